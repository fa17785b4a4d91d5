/*
 * test_netguard.c: which addresses a tenant's URL may reach (host/netguard.h): the
 * refused ranges, their IPv6 forms, the numeric spellings of loopback, the allow-list.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "netguard.h"
#include "test.h"

/* Is the literal address s allowed by g (NULL: defaults)? why gets the reason. */
static bool allowed(const struct ks_netguard *g, const char *s, char *why)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in a4 = { .sin_family = AF_INET };

	why[0] = '\0';
	if (inet_pton(AF_INET, s, &a4.sin_addr) == 1)
		return ks_netguard_allows(g, (struct sockaddr *)&a4, why, 200);
	if (inet_pton(AF_INET6, s, &a6.sin6_addr) == 1)
		return ks_netguard_allows(g, (struct sockaddr *)&a6, why, 200);
	return true; /* a test bug: fails the refused() checks below */
}

static bool refused(const char *s)
{
	char why[200];

	return !allowed(NULL, s, why);
}

TEST(refuses_the_required_ranges)
{
	static const char *const bad[] = {
		"169.254.169.254", "169.254.0.1",  "127.0.0.1",
		"127.255.255.254", "10.0.0.1",	   "10.255.255.255",
		"172.16.0.1",	   "172.31.255.1", "192.168.1.1",
		"0.0.0.0",	   "::1",	   "::",
		"fc00::1",	   "fd12:3456::1", "fe80::1",
		"febf::1",	   "100.64.0.1",   "224.0.0.1",
		"255.255.255.255",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!refused(bad[i]))
			FAIL_("%s was allowed", bad[i]);
}

TEST(allows_public_addresses)
{
	static const char *const good[] = {
		"8.8.8.8",  "1.1.1.1",	   "172.15.255.255",  "172.32.0.1",   "192.169.0.1",
		"11.0.0.1", "169.253.0.1", "2001:db8::1",     "2a00:1450::1", "fbff::1",
		"fec0::1",  "100.128.0.1", "223.255.255.255",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (refused(good[i]))
			FAIL_("%s was refused", good[i]);
}

TEST(ipv4_in_ipv6_is_judged_by_its_ipv4)
{
	char why[200];

	ASSERT(refused("::ffff:127.0.0.1"));
	ASSERT(refused("::ffff:169.254.169.254"));
	ASSERT(refused("::ffff:10.1.2.3"));
	ASSERT(refused("::127.0.0.1"));
	ASSERT(refused("64:ff9b::a9fe:a9fe"));
	ASSERT(!refused("::ffff:8.8.8.8"));
	ASSERT(!allowed(NULL, "::ffff:127.0.0.1", why));
	ASSERT_STR(why, "::ffff:127.0.0.1 is a loopback address");
}

TEST(the_reason_names_the_address_and_its_class)
{
	char why[200];

	ASSERT(!allowed(NULL, "169.254.169.254", why));
	ASSERT_STR(why, "169.254.169.254 is a link-local (cloud metadata) address");
	ASSERT(!allowed(NULL, "10.0.0.1", why));
	ASSERT_STR(why, "10.0.0.1 is a private address");
	ASSERT(!allowed(NULL, "fe80::1", why));
	ASSERT_STR(why, "fe80::1 is a link-local address");
}

TEST(allow_list)
{
	struct ks_netguard g;
	char *err = NULL, why[200];

	ASSERT_EQ(ks_netguard_parse(&g, "127.0.0.0/8, ::1 10.1.0.0/16", &err), 0);
	ASSERT_EQ(g.n, 3);
	ASSERT(allowed(&g, "127.0.0.1", why));
	ASSERT(allowed(&g, "::1", why));
	ASSERT(allowed(&g, "::ffff:127.0.0.1", why)); /* an allowed IPv4 network's mapped form */
	ASSERT(allowed(&g, "10.1.200.3", why));
	ASSERT(!allowed(&g, "10.2.0.1", why));
	ASSERT(!allowed(&g, "169.254.169.254", why));
	ASSERT(!allowed(&g, "fe80::1", why));
	ASSERT_EQ(ks_netguard_parse(&g, "", &err), 0);
	ASSERT_EQ(g.n, 0);
	ASSERT(!allowed(&g, "127.0.0.1", why));
	ASSERT_EQ(ks_netguard_parse(&g, "127.0.0.0/33", &err), -EINVAL);
	ASSERT_STR(err, "'127.0.0.0/33' is not a network (a.b.c.d/len or x::y/len)");
	free(err);
	ASSERT_EQ(ks_netguard_parse(&g, "localhost", &err), -EINVAL);
	free(err);
	ASSERT_EQ(ks_netguard_parse(&g, "10.0.0.0/", &err), -EINVAL);
	free(err);
}

TEST(url_host)
{
	char h[256];

	ASSERT_EQ(ks_netguard_url_host("http://[::1]:8080/x.img", h, sizeof(h)), 0);
	ASSERT_STR(h, "::1");
	ASSERT_EQ(ks_netguard_url_host("https://user:pw@example.org/a?b", h, sizeof(h)), 0);
	ASSERT_STR(h, "example.org");
	ASSERT_EQ(ks_netguard_url_host("file:///etc/passwd", h, sizeof(h)), -EINVAL);
	ASSERT_EQ(ks_netguard_url_host("gopher://x/", h, sizeof(h)), -EINVAL);
	ASSERT_EQ(ks_netguard_url_host("not a url", h, sizeof(h)), -EINVAL);
}

/* The numeric spellings of 127.0.0.1 a URL may use resolve to loopback, and are refused. */
TEST(numeric_forms_of_loopback)
{
	static const char *const urls[] = {
		"http://2130706433/",
		"http://0x7f000001/",
		"http://0177.0.0.1/",
		"http://127.1/",
		"http://0/",
		"http://[::ffff:127.0.0.1]/",
		"http://[::ffff:7f00:1]/",
		"http://169.254.169.254/latest/meta-data/",
		"http://0xa9fea9fe/",
	};
	char h[256], why[200];

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		ASSERT_EQ(ks_netguard_url_host(urls[i], h, sizeof(h)), 0);
		if (ks_netguard_check_host(NULL, h, why, sizeof(why)) != -EACCES)
			FAIL_("%s (host %s) was not refused", urls[i], h);
	}
	ASSERT_EQ(ks_netguard_url_host("http://2130706433/", h, sizeof(h)), 0);
	ASSERT_EQ(ks_netguard_check_host(NULL, h, why, sizeof(why)), -EACCES);
	ASSERT_STR(why, "127.0.0.1 is a loopback address");
}

TEST(localhost_is_refused_by_what_it_resolves_to)
{
	char why[200];
	struct ks_netguard g;
	char *err = NULL;

	ASSERT_EQ(ks_netguard_check_host(NULL, "localhost", why, sizeof(why)), -EACCES);
	ASSERT_EQ(ks_netguard_parse(&g, "127.0.0.0/8 ::1", &err), 0);
	ASSERT_EQ(ks_netguard_check_host(&g, "localhost", why, sizeof(why)), 0);
	ASSERT_EQ(ks_netguard_check_host(NULL, "no-such-host.invalid", why, sizeof(why)),
		  -EHOSTUNREACH);
}

int main(void)
{
	RUN(refuses_the_required_ranges);
	RUN(allows_public_addresses);
	RUN(ipv4_in_ipv6_is_judged_by_its_ipv4);
	RUN(the_reason_names_the_address_and_its_class);
	RUN(allow_list);
	RUN(url_host);
	RUN(numeric_forms_of_loopback);
	RUN(localhost_is_refused_by_what_it_resolves_to);
	TEST_MAIN();
}
