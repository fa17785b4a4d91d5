/*
 * fault.c: crash points (fault.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"

static const char *spec(void)
{
	static int read;
	static const char *at;

	if (!read) {
		at = getenv("KUPENSTACK_CRASH_AT");
		if (at && !*at)
			at = NULL;
		read = 1;
	}
	return at;
}

/* Whether the item s[0, n) names point for kind. */
static bool matches(const char *s, size_t n, const char *kind, const char *point)
{
	const char *colon = memchr(s, ':', n);
	size_t plen = strlen(point);

	if (!colon)
		return n == plen && !memcmp(s, point, n);
	if (!kind || (size_t)(colon - s) != strlen(kind) || memcmp(s, kind, colon - s))
		return false;
	return n - (size_t)(colon - s) - 1 == plen && !memcmp(colon + 1, point, plen);
}

/* Whether the list s names point for kind. */
static bool named(const char *s, const char *kind, const char *point)
{
	while (s && *s) {
		size_t n = strcspn(s, ",");

		if (matches(s, n, kind, point))
			return true;
		s += n;
		s += *s == ',';
	}
	return false;
}

bool ks_fault_armed(const char *kind, const char *point)
{
	return named(spec(), kind, point);
}

static const char *freeze_spec(void)
{
	static int read;
	static const char *at;

	if (!read) {
		at = getenv("KUPENSTACK_FREEZE_AT");
		if (at && !*at)
			at = NULL;
		read = 1;
	}
	return at;
}

void ks_fault_point(const char *kind, const char *point)
{
	if (freeze_spec() && named(freeze_spec(), kind, point)) {
		ks_warn("freeze point reached: blocking the loop", "kind=%s point=%s",
			kind ? kind : "", point);
		for (;;)
			pause();
	}
	if (!spec() || !ks_fault_armed(kind, point))
		return;
	ks_warn("crash point reached: killing the process", "kind=%s point=%s", kind ? kind : "",
		point);
	raise(SIGKILL);
}
