/* cert.c: a CA and a serving certificate for the admission webhook, with OpenSSL. */
#include "admission/cert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ks.h"

static char *ssl_error(const char *what)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	ERR_clear_error();
	return ks_xasprintf("could not %s: %s", what, buf);
}

static char *pem_of(int (*write)(BIO *, const void *), const void *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out = NULL;
	long n;

	if (b && write(b, x) == 1) {
		n = BIO_get_mem_data(b, &p);
		out = ks_xstrndup(p, (size_t)n);
	}
	BIO_free(b);
	return out;
}

static int write_cert(BIO *b, const void *x)
{
	return PEM_write_bio_X509(b, (X509 *)x);
}

static int write_key(BIO *b, const void *k)
{
	return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* "DNS:a,IP:127.0.0.1" from sans; the caller frees it. */
static char *san_list(const char *const *sans)
{
	struct ks_buf b;
	unsigned char addr[16];

	ks_buf_init(&b);
	for (size_t i = 0; sans[i]; i++) {
		bool ip = inet_pton(AF_INET, sans[i], addr) == 1 ||
			  inet_pton(AF_INET6, sans[i], addr) == 1;

		ks_buf_printf(&b, "%s%s:%s", i ? "," : "", ip ? "IP" : "DNS", sans[i]);
	}
	return ks_buf_steal(&b);
}

/* A certificate for key, named cn, signed by ca_key (self-signed when ca is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *ca, EVP_PKEY *ca_key,
		       const char *const *sans, long seconds)
{
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char *san = NULL;
	bool ok;

	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ok = x && bn && X509_set_version(x, 2) && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), seconds) && X509_set_pubkey(x, key);
	ok = ok && X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					      (const unsigned char *)cn, -1, -1, 0);
	ok = ok && X509_set_issuer_name(x, X509_get_subject_name(ca ? ca : x));
	if (ok && !ca) {
		ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
		     add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		     add_ext(x, x, NID_subject_key_identifier, "hash");
	} else if (ok) {
		san = san_list(sans);
		ok = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") &&
		     add_ext(x, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
		     add_ext(x, ca, NID_ext_key_usage, "serverAuth") &&
		     add_ext(x, ca, NID_authority_key_identifier, "keyid") &&
		     add_ext(x, ca, NID_subject_alt_name, san);
	}
	ok = ok && X509_sign(x, ca_key ? ca_key : key, EVP_sha256()) > 0;
	free(san);
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		x = NULL;
	}
	return x;
}

int ks_cert_make(struct ks_cert_pair *out, const char *const *sans, long seconds, char **err)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
	X509 *ca = NULL, *cert = NULL;
	int rc = -EINVAL;
	char cn[64];

	memset(out, 0, sizeof(*out));
	if (!ca_key || !key) {
		*err = ssl_error("make an EC key");
		goto out;
	}
	snprintf(cn, sizeof(cn), "kupenstack-admission-ca-%lld", (long long)time(NULL));
	ca = make_cert(ca_key, cn, NULL, NULL, (const char *const[]){ NULL }, seconds);
	cert = ca ? make_cert(key, sans[0], ca, ca_key, sans, seconds) : NULL;
	if (!cert) {
		*err = ssl_error("make a certificate");
		goto out;
	}
	out->ca_pem = pem_of(write_cert, ca);
	out->ca_key_pem = pem_of(write_key, ca_key);
	out->cert_pem = pem_of(write_cert, cert);
	out->key_pem = pem_of(write_key, key);
	rc = 0;
	if (!out->ca_pem || !out->ca_key_pem || !out->cert_pem || !out->key_pem) {
		ks_cert_deinit(out);
		*err = ssl_error("write PEM");
		rc = -EINVAL;
	}
out:
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	return rc;
}

void ks_cert_deinit(struct ks_cert_pair *p)
{
	free(p->ca_pem);
	free(p->ca_key_pem);
	free(p->cert_pem);
	free(p->key_pem);
	memset(p, 0, sizeof(*p));
}

bool ks_cert_remaining(const char *pem, long *left, long *total)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int days, secs;
	bool ok = false;

	if (x && ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x))) {
		*left = days * 86400L + secs;
		ok = true;
		if (total &&
		    ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)))
			*total = days * 86400L + secs;
	}
	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return ok;
}

bool ks_cert_names(const char *pem, const char *host)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	bool ok = x && X509_check_host(x, host, 0, 0, NULL) == 1;

	X509_free(x);
	BIO_free(b);
	ERR_clear_error();
	return ok;
}
