/*
 * netguard.c: the address rules of netguard.h, and the operator's allow-list.
 */
#include "netguard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ks.h"

/* The IPv4 ranges refused by default: network, prefix, what it is. */
static const struct {
	uint32_t net;
	unsigned prefix;
	const char *what;
} v4_rules[] = {
	{ 0x00000000, 8, "unspecified (this network)" },
	{ 0x0a000000, 8, "private" },
	{ 0x64400000, 10, "shared (carrier NAT)" },
	{ 0x7f000000, 8, "loopback" },
	{ 0xa9fe0000, 16, "link-local (cloud metadata)" },
	{ 0xac100000, 12, "private" },
	{ 0xc0a80000, 16, "private" },
	{ 0xe0000000, 4, "multicast" },
	{ 0xf0000000, 4, "reserved" },
};

static uint32_t mask4(unsigned prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static const char *class4(uint32_t a)
{
	for (size_t i = 0; i < KS_ARRAY_SIZE(v4_rules); i++)
		if ((a & mask4(v4_rules[i].prefix)) == v4_rules[i].net)
			return v4_rules[i].what;
	return NULL;
}

/* The IPv4 address embedded in a (mapped, compatible or NAT64), or false. */
static bool embedded4(const uint8_t *a, uint32_t *out)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t compat[12] = { 0 };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b };

	if (memcmp(a, mapped, 12) != 0 && memcmp(a, compat, 12) != 0 && memcmp(a, nat64, 12) != 0)
		return false;
	*out = (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15];
	return true;
}

static const char *class6(const uint8_t *a)
{
	static const uint8_t zero[16] = { 0 };
	uint32_t v4;

	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return a[15] ? "loopback" : "unspecified";
	if (embedded4(a, &v4))
		return class4(v4);
	if ((a[0] & 0xfe) == 0xfc)
		return "unique local (private)";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local";
	if (a[0] == 0xff)
		return "multicast";
	return NULL;
}

const char *ks_netguard_class(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return class4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
		return class6(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
	return "not an internet address";
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, full) != 0)
		return false;
	return rest == 0 || ((a[full] ^ net[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* Is the address (family, 4 or 16 bytes) in one of g's networks? */
static bool listed(const struct ks_netguard *g, int family, const uint8_t *a)
{
	for (size_t i = 0; g && i < g->n; i++)
		if (g->allow[i].family == family &&
		    prefix_match(a, g->allow[i].addr, g->allow[i].prefix))
			return true;
	return false;
}

bool ks_netguard_allows(const struct ks_netguard *g, const struct sockaddr *sa, char *why,
			size_t cap)
{
	const char *what = ks_netguard_class(sa);
	char text[INET6_ADDRSTRLEN] = "?";
	const uint8_t *a = NULL;
	uint8_t v4[16] = { 0 };
	uint32_t e;

	if (!what)
		return true;
	if (sa->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		a = v4;
		inet_ntop(AF_INET, a, text, sizeof(text));
		if (listed(g, AF_INET, a))
			return true;
	} else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		inet_ntop(AF_INET6, a, text, sizeof(text));
		if (listed(g, AF_INET6, a))
			return true;
		/* An allowed IPv4 network allows its mapped forms too. */
		if (embedded4(a, &e)) {
			e = htonl(e);
			memcpy(v4, &e, 4);
			if (listed(g, AF_INET, v4))
				return true;
		}
	}
	snprintf(why, cap, "%s is a%s %s address", text, strchr("aeiou", what[0]) ? "n" : "", what);
	return false;
}

/* One entry of the allow-list into g->allow[g->n]; false if it is not a network. */
static bool parse_one(struct ks_netguard *g, const char *s)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long prefix;
	char *end;
	int family;

	if (alen == 0 || alen >= sizeof(addr) || g->n == KS_NETGUARD_MAX)
		return false;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	memset(g->allow[g->n].addr, 0, 16);
	if (inet_pton(family, addr, g->allow[g->n].addr) != 1)
		return false;
	prefix = family == AF_INET ? 32 : 128;
	if (slash) {
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (!slash[1] || *end || errno || prefix > (family == AF_INET ? 32u : 128u))
			return false;
	}
	g->allow[g->n].family = family;
	g->allow[g->n].prefix = (unsigned)prefix;
	g->n++;
	return true;
}

int ks_netguard_parse(struct ks_netguard *g, const char *list, char **err)
{
	const char *p = list ? list : "";
	char item[128];

	memset(g, 0, sizeof(*g));
	while (*p) {
		size_t n = strcspn(p, ", \t\n");

		if (n == 0) {
			p++;
			continue;
		}
		snprintf(item, sizeof(item), "%.*s", (int)KS_MIN(n, sizeof(item) - 1), p);
		if (n >= sizeof(item) || !parse_one(g, item)) {
			*err = g->n == KS_NETGUARD_MAX
				       ? ks_xasprintf("more than %d networks", KS_NETGUARD_MAX)
				       : ks_xasprintf(
						 "'%s' is not a network (a.b.c.d/len or x::y/len)",
						 item);
			return -EINVAL;
		}
		p += n;
	}
	return 0;
}

int ks_netguard_url_host(const char *url, char *out, size_t cap)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -EINVAL;
	size_t n;

	out[0] = '\0';
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out_free;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		goto out_free;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0])
		goto out_free;
	n = strlen(host);
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') /* [::1] */
		snprintf(out, cap, "%.*s", (int)(n - 2), host + 1);
	else
		snprintf(out, cap, "%s", host);
	rc = 0;
out_free:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

int ks_netguard_check_ai(const struct ks_netguard *g, const struct addrinfo *ai, char *why,
			 size_t cap)
{
	for (; ai; ai = ai->ai_next)
		if (!ks_netguard_allows(g, ai->ai_addr, why, cap))
			return -EACCES;
	return 0;
}

int ks_netguard_check_host(const struct ks_netguard *g, const char *host, char *why, size_t cap)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc;

	if (getaddrinfo(host, NULL, &hints, &ai) != 0) {
		snprintf(why, cap, "%s does not resolve", host);
		return -EHOSTUNREACH;
	}
	rc = ks_netguard_check_ai(g, ai, why, cap);
	freeaddrinfo(ai);
	return rc;
}
