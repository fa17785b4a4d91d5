#pragma once
/*
 * pattern.h: the Lua 5.1 pattern matcher of the sandbox (pattern.c), for its string
 * functions (strlib.c). A match charges its work to the running task (see pattern.c),
 * and raises a Lua error for a malformed pattern, one too complex, or a task over its
 * limits.
 */
#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#define KS_PATTERN_ESC '%'
#define KS_PATTERN_SPECIALS "^$*+?.([%-"
#define KS_PATTERN_MAX_CAPTURES 32

struct ks_pattern {
	lua_State *L;
	const char *src, *src_end, *pat_end;
	int level, depth;
	uint64_t steps;
	struct {
		const char *init;
		ptrdiff_t len;
	} cap[KS_PATTERN_MAX_CAPTURES];
};

/* Set m up for matching pattern [p, p + lp) in subject [s, s + ls), on L's task. */
void ks_pattern_init(struct ks_pattern *m, lua_State *L, const char *s, size_t ls, const char *p,
		     size_t lp);
/* Where the match of the pattern from p at s ends, or NULL (no match). */
const char *ks_pattern_match(struct ks_pattern *m, const char *s, const char *p);
/* n units of work done: charge them to the task once there are enough. */
void ks_pattern_step(struct ks_pattern *m, uint64_t n);
/* Push capture i of the match [s, e) (the whole match when there are none). */
void ks_pattern_push_capture(struct ks_pattern *m, int i, const char *s, const char *e);
/* Push the captures, or the whole match [s, e) when there are none (s NULL: nothing);
 * returns how many. */
int ks_pattern_push_captures(struct ks_pattern *m, const char *s, const char *e);
