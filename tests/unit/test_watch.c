/* test_watch.c: the watch-stream decoder, fed the way a network feeds it. */
#include <errno.h>
#include <stdlib.h>

#include "json.h"
#include "ks.h"
#include "test.h"
#include "watch.h"

struct got {
	int n;
	char log[1024];
};

static void on_ev(enum ks_watch_type t, cJSON *obj, void *d)
{
	static const char *const names[] = { "A", "M", "D", "B", "E" };
	struct got *g = d;
	const char *name = ks_json_str(obj, "metadata.name");
	size_t len = strlen(g->log);

	g->n++;
	snprintf(g->log + len, sizeof(g->log) - len, "%s:%s ", names[t], name ? name : "-");
}

#define EV(type, name) "{\"type\":\"" type "\",\"object\":{\"metadata\":{\"name\":\"" name "\"}}}\n"

TEST(whole_events)
{
	struct ks_watch_decoder d;
	struct got g = { 0 };
	char *err = NULL;
	const char *s = EV("ADDED", "a") EV("MODIFIED", "a") EV("DELETED", "a") EV("BOOKMARK", "");

	ks_watch_decoder_init(&d, 0);
	ASSERT_EQ(ks_watch_decode(&d, s, strlen(s), on_ev, &g, &err), 0);
	ASSERT_STR(g.log, "A:a M:a D:a B: ");
	ks_watch_decoder_deinit(&d);
}

TEST(byte_at_a_time)
{
	struct ks_watch_decoder d;
	struct got g = { 0 };
	char *err = NULL;
	const char *s = EV("ADDED", "x") "\r\n" EV("ADDED", "y");

	ks_watch_decoder_init(&d, 0);
	for (size_t i = 0; i < strlen(s); i++)
		ASSERT_EQ(ks_watch_decode(&d, s + i, 1, on_ev, &g, &err), 0);
	ASSERT_STR(g.log, "A:x A:y ");
	ks_watch_decoder_deinit(&d);
}

TEST(truncated_event_waits)
{
	struct ks_watch_decoder d;
	struct got g = { 0 };
	char *err = NULL;
	const char *s = EV("ADDED", "x");

	ks_watch_decoder_init(&d, 0);
	ASSERT_EQ(ks_watch_decode(&d, s, strlen(s) - 5, on_ev, &g, &err), 0);
	ASSERT_EQ(g.n, 0);
	ASSERT_EQ(ks_watch_decode(&d, s + strlen(s) - 5, 5, on_ev, &g, &err), 0);
	ASSERT_EQ(g.n, 1);
	ks_watch_decoder_deinit(&d);
}

TEST(garbage_is_an_error_after_good_events)
{
	struct ks_watch_decoder d;
	struct got g = { 0 };
	char *err = NULL;
	const char *s = EV("ADDED", "x") "}{garbage\n" EV("ADDED", "y");

	ks_watch_decoder_init(&d, 0);
	ASSERT_EQ(ks_watch_decode(&d, s, strlen(s), on_ev, &g, &err), -EBADMSG);
	ASSERT_STR(g.log, "A:x ");
	ASSERT(err && strstr(err, "not a JSON object"));
	free(err);
	ks_watch_decoder_deinit(&d);
}

TEST(unknown_type_and_missing_object)
{
	struct ks_watch_decoder d;
	struct got g = { 0 };
	char *err = NULL;
	const char *a = "{\"type\":\"EXPLODED\",\"object\":{}}\n";
	const char *b = "{\"type\":\"ADDED\"}\n";

	ks_watch_decoder_init(&d, 0);
	ASSERT_EQ(ks_watch_decode(&d, a, strlen(a), on_ev, &g, &err), -EBADMSG);
	free(err);
	ks_watch_decoder_deinit(&d);
	ks_watch_decoder_init(&d, 0);
	ASSERT_EQ(ks_watch_decode(&d, b, strlen(b), on_ev, &g, &err), -EBADMSG);
	ASSERT(strstr(err, "no object"));
	free(err);
	ASSERT_EQ(g.n, 0);
	ks_watch_decoder_deinit(&d);
}

TEST(oversized_event_refused)
{
	struct ks_watch_decoder d;
	struct got g = { 0 };
	char *err = NULL, big[300];

	memset(big, 'x', sizeof(big));
	ks_watch_decoder_init(&d, 256);
	ASSERT_EQ(ks_watch_decode(&d, big, sizeof(big), on_ev, &g, &err), -EMSGSIZE);
	free(err);
	ks_watch_decoder_deinit(&d);
}

TEST(large_object_accepted)
{
	struct ks_watch_decoder d;
	struct got g = { 0 };
	char *err = NULL;
	struct ks_buf b;

	ks_buf_init(&b);
	ks_buf_puts(&b,
		    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"big\"},\"data\":\"");
	for (int i = 0; i < 1 << 20; i++)
		ks_buf_append(&b, "y", 1);
	ks_buf_puts(&b, "\"}}\n");
	ks_watch_decoder_init(&d, 0);
	for (size_t off = 0; off < b.len; off += 16384)
		ASSERT_EQ(ks_watch_decode(&d, b.data + off, KS_MIN(16384, b.len - off), on_ev, &g,
					  &err),
			  0);
	ASSERT_STR(g.log, "A:big ");
	ks_buf_deinit(&b);
	ks_watch_decoder_deinit(&d);
}

int main(void)
{
	RUN(whole_events);
	RUN(byte_at_a_time);
	RUN(truncated_event_waits);
	RUN(garbage_is_an_error_after_good_events);
	RUN(unknown_type_and_missing_object);
	RUN(oversized_event_refused);
	RUN(large_object_accepted);
	TEST_MAIN();
}
