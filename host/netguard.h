#pragma once
/*
 * netguard.h: which addresses a fetch made on a tenant's behalf may reach. A tenant
 * names a URL (an Image's spec.source.url) and the operator fetches it from where the
 * operator sits: next to the cloud's metadata service, the cluster's internal services
 * and its own loopback. So the addresses of those places are refused unless the
 * operator's allow-list names them:
 *
 *   IPv4  0.0.0.0/8 (this network), 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (private),
 *         100.64.0.0/10 (shared, carrier NAT), 127.0.0.0/8 (loopback), 169.254.0.0/16
 *         (link-local: cloud metadata), 224.0.0.0/4 (multicast), 240.0.0.0/4 (reserved,
 *         broadcast)
 *   IPv6  :: and ::1, fc00::/7 (unique local), fe80::/10 (link-local), ff00::/8
 *         (multicast); ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible) and
 *         64:ff9b::a.b.c.d (NAT64) are judged by their IPv4 address.
 *
 * Names are judged by every address they resolve to, and the checks are made on the
 * address a connection is really opened to (host/transfer.c checks each connect, the
 * redirects' too), so a name that resolves differently the second time gains nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#define KS_NETGUARD_MAX 32

/* A list of networks the operator allows despite the rules above. Caller storage. */
struct ks_netguard {
	size_t n;
	struct {
		int family; /* AF_INET or AF_INET6 */
		uint8_t addr[16];
		unsigned prefix;
	} allow[KS_NETGUARD_MAX];
};

/*
 * Fill g from list: CIDRs ("127.0.0.0/8", "::1/128"; a bare address is one host)
 * separated by commas or blanks; NULL or "" allows nothing more. Returns 0, or -EINVAL
 * with *err (caller frees) naming the entry that is not a network.
 */
int ks_netguard_parse(struct ks_netguard *g, const char *list, char **err);

/* Why sa may not be reached by default ("loopback", "link-local", "private", ...), or
 * NULL for a public address. */
const char *ks_netguard_class(const struct sockaddr *sa);

/*
 * May sa be connected to? true if it is public or g (may be NULL) allows it; false
 * with why[0..cap) saying "127.0.0.1 is a loopback address" otherwise.
 */
bool ks_netguard_allows(const struct ks_netguard *g, const struct sockaddr *sa, char *why,
			size_t cap);

/*
 * The host of url (http or https; "" for anything else) into out[0..cap). Returns 0, or
 * -EINVAL when url is not an http(s) URL with a host.
 */
int ks_netguard_url_host(const char *url, char *out, size_t cap);

/*
 * Resolve host (blocking: getaddrinfo, so numeric forms such as "2130706433" and
 * "0177.0.0.1" are read as the C library reads them) and check every address it has.
 * Returns 0, -EACCES with why set when one is refused, or -EHOSTUNREACH when it does
 * not resolve. For tests and tools; the host resolves on the loop's thread pool
 * (bind_transfer.c) and checks the result with ks_netguard_check_ai().
 */
int ks_netguard_check_host(const struct ks_netguard *g, const char *host, char *why, size_t cap);

struct addrinfo;
/* Check every address of ai: 0, or -EACCES with why set for the first refused. */
int ks_netguard_check_ai(const struct ks_netguard *g, const struct addrinfo *ai, char *why,
			 size_t cap);
