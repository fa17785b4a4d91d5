#pragma once
/*
 * digest.h: the SHA-256 and MD5 of a body as it passes (OpenSSL's EVP), in hex: what
 * host/transfer.c checks a tenant's image against (SHA-256) and reports beside Glance's
 * own checksum (MD5). Updated piece by piece; finished once, after which it only answers.
 */
#include <stddef.h>

#include <openssl/evp.h>

struct ks_digest {
	EVP_MD_CTX *sha256, *md5;
	char sha256_hex[65]; /* "" until ks_digest_finish() */
	char md5_hex[33];
};

/* Start both digests (aborts when OpenSSL cannot). */
void ks_digest_init(struct ks_digest *d);
void ks_digest_update(struct ks_digest *d, const void *p, size_t len);
/* Finish both (a second call does nothing) and fill in the hex strings. */
void ks_digest_finish(struct ks_digest *d);
void ks_digest_deinit(struct ks_digest *d);
