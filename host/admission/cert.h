#pragma once
/*
 * cert.h: the admission webhook's certificates, made with OpenSSL: a self-signed CA and
 * a serving certificate it signs (EC P-256, SHA-256), as PEM text, and how long a PEM
 * certificate has left. Pure: no loop, no I/O.
 */
#include <stdbool.h>

struct ks_cert_pair {
	char *ca_pem, *ca_key_pem; /* the CA */
	char *cert_pem, *key_pem;  /* the serving certificate and its key */
};

/*
 * A new CA and a serving certificate for the names in sans (NULL-terminated; an entry
 * that parses as an IP address becomes an IP SAN, any other a DNS SAN), both valid for
 * seconds from now (a minute back-dated). Returns 0, or -EINVAL with *err (free it).
 */
int ks_cert_make(struct ks_cert_pair *out, const char *const *sans, long seconds, char **err);
void ks_cert_deinit(struct ks_cert_pair *p);
/* Seconds until the first certificate in pem expires (negative once it has), and its
 * whole validity in *total (may be NULL). Returns false when pem holds no certificate. */
bool ks_cert_remaining(const char *pem, long *left, long *total);
/* Whether the first certificate in pem is valid for the DNS name host (its SANs). */
bool ks_cert_names(const char *pem, const char *host);
