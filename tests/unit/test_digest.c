/*
 * test_digest.c: host/digest.h against the published vectors (FIPS 180-2 for SHA-256,
 * RFC 1321 for MD5), fed whole and piece by piece, and finished twice.
 */
#include <string.h>

#include "digest.h"
#include "test.h"

static void feed(struct ks_digest *d, const char *s, size_t step)
{
	size_t len = strlen(s);

	for (size_t i = 0; i < len; i += step)
		ks_digest_update(d, s + i, len - i < step ? len - i : step);
}

TEST(empty)
{
	struct ks_digest d;

	ks_digest_init(&d);
	ks_digest_finish(&d);
	ASSERT_STR(d.sha256_hex,
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ASSERT_STR(d.md5_hex, "d41d8cd98f00b204e9800998ecf8427e");
	ks_digest_deinit(&d);
}

TEST(abc_whole_and_in_pieces)
{
	static const char *const sha =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char *const md5 = "900150983cd24fb0d6963f7d28e17f72";

	for (size_t step = 1; step <= 3; step++) {
		struct ks_digest d;

		ks_digest_init(&d);
		feed(&d, "abc", step);
		ks_digest_finish(&d);
		ASSERT_STR(d.sha256_hex, sha);
		ASSERT_STR(d.md5_hex, md5);
		ks_digest_deinit(&d);
	}
}

TEST(two_blocks_in_uneven_pieces)
{
	struct ks_digest d;

	ks_digest_init(&d);
	feed(&d, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 7);
	ks_digest_finish(&d);
	ASSERT_STR(d.sha256_hex,
		   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	ASSERT_STR(d.md5_hex, "8215ef0796a20bcaaae116d3876c664a");
	ks_digest_deinit(&d);
}

TEST(finish_twice_keeps_the_answer)
{
	struct ks_digest d;

	ks_digest_init(&d);
	feed(&d, "abc", 3);
	ks_digest_finish(&d);
	ks_digest_finish(&d);
	ASSERT_STR(d.md5_hex, "900150983cd24fb0d6963f7d28e17f72");
	ks_digest_deinit(&d);
}

int main(void)
{
	RUN(empty);
	RUN(abc_whole_and_in_pieces);
	RUN(two_blocks_in_uneven_pieces);
	RUN(finish_twice_keeps_the_answer);
	TEST_MAIN();
}
