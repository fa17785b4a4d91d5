/*
 * digest.c: SHA-256 and MD5 side by side over one stream of bytes.
 */
#include "digest.h"

#include <stdio.h>

#include "ks.h"

void ks_digest_init(struct ks_digest *d)
{
	d->sha256 = EVP_MD_CTX_new();
	d->md5 = EVP_MD_CTX_new();
	d->sha256_hex[0] = d->md5_hex[0] = '\0';
	ks_require(d->sha256 && d->md5 && EVP_DigestInit_ex(d->sha256, EVP_sha256(), NULL) &&
		   EVP_DigestInit_ex(d->md5, EVP_md5(), NULL));
}

void ks_digest_update(struct ks_digest *d, const void *p, size_t len)
{
	EVP_DigestUpdate(d->sha256, p, len);
	EVP_DigestUpdate(d->md5, p, len);
}

static void final_hex(EVP_MD_CTX *ctx, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	EVP_DigestFinal_ex(ctx, md, &n);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void ks_digest_finish(struct ks_digest *d)
{
	if (d->sha256_hex[0])
		return;
	final_hex(d->sha256, d->sha256_hex);
	final_hex(d->md5, d->md5_hex);
}

void ks_digest_deinit(struct ks_digest *d)
{
	EVP_MD_CTX_free(d->sha256);
	EVP_MD_CTX_free(d->md5);
	d->sha256 = d->md5 = NULL;
}
