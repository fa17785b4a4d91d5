/*
 * pattern.c: the pattern matcher of the sandbox's string.find, match, gmatch and gsub
 * (strlib.c): Lua 5.1 patterns (the same language and results as LuaJIT's), matched by a
 * backtracking matcher that charges its work to the running task.
 *
 * Why: LuaJIT matches patterns in C, where the count hook never fires, and backtracking
 * is exponential in the number of quantifiers: string.rep("a", 26):find(string.rep("a*",
 * 26) .. "b") would hold the loop for hours. Here every unit of work (a call of ks_pattern_match(),
 * a turn of any loop over the subject or over a [set]) is a step, and every CHARGE_EVERY
 * steps are charged as as many instructions with ks_lua_charge(), which also checks the
 * task's wall time and slice and raises its (final) stop reason. Between two steps the
 * matcher does a bounded amount of work, so a match costs at most a constant times the
 * instructions it is charged: the task's budget and wall-time limit bound a pattern
 * exactly as they bound Lua code, and no limit on subject or pattern shape is needed
 * (a step limit, not a complexity limit: legitimate patterns on large subjects still
 * work, only the work done is bounded). Recursion (C stack) is bounded by MAX_DEPTH, as
 * in LuaJIT ("pattern too complex"); a plain find (memmem) is linear and not charged.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua/engine.h"
#include "lua/internal.h"
#include "lua/pattern.h"

#define MAX_DEPTH 200
#define CHARGE_EVERY 1000
#define CAP_UNFINISHED (-1)
#define CAP_POSITION (-2)

/* n units of work done: charge them to the task once there are enough. */
void ks_pattern_step(struct ks_pattern *m, uint64_t n)
{
	m->steps += n;
	if (m->steps >= CHARGE_EVERY) {
		uint64_t s = m->steps;

		m->steps = 0;
		ks_lua_charge(m->L, s);
	}
}

/* Past the single-character class at p. */
static const char *class_end(struct ks_pattern *m, const char *p)
{
	if (*p == KS_PATTERN_ESC) {
		if (p + 1 >= m->pat_end)
			luaL_error(m->L, "malformed pattern (ends with '%%')");
		return p + 2;
	}
	if (*p != '[')
		return p + 1;
	p++;
	if (p < m->pat_end && *p == '^')
		p++;
	do { /* the first character of a set may be ']' */
		if (p >= m->pat_end)
			luaL_error(m->L, "malformed pattern (missing ']')");
		ks_pattern_step(m, 1);
		if (*p++ == KS_PATTERN_ESC && p < m->pat_end)
			p++;
	} while (p >= m->pat_end || *p != ']');
	return p + 1;
}

static bool match_class(int c, int cl)
{
	bool r;

	switch (tolower(cl)) {
	case 'a':
		r = isalpha(c);
		break;
	case 'c':
		r = iscntrl(c);
		break;
	case 'd':
		r = isdigit(c);
		break;
	case 'g':
		r = isgraph(c);
		break;
	case 'l':
		r = islower(c);
		break;
	case 'p':
		r = ispunct(c);
		break;
	case 's':
		r = isspace(c);
		break;
	case 'u':
		r = isupper(c);
		break;
	case 'w':
		r = isalnum(c);
		break;
	case 'x':
		r = isxdigit(c);
		break;
	case 'z':
		r = c == 0;
		break;
	default:
		return cl == c;
	}
	return isupper(cl) ? !r : r;
}

/* c in the set [p, ec] (p at '[', ec at its ']')? */
static bool match_set(struct ks_pattern *m, int c, const char *p, const char *ec)
{
	bool in = true;

	if (p[1] == '^') {
		in = false;
		p++;
	}
	while (++p < ec) {
		ks_pattern_step(m, 1);
		if (*p == KS_PATTERN_ESC) {
			p++;
			if (match_class(c, (unsigned char)*p))
				return in;
		} else if (p[1] == '-' && p + 2 < ec) {
			p += 2;
			if ((unsigned char)p[-2] <= c && c <= (unsigned char)*p)
				return in;
		} else if ((unsigned char)*p == c) {
			return in;
		}
	}
	return !in;
}

static bool single_match(struct ks_pattern *m, const char *s, const char *p, const char *ep)
{
	int c = (unsigned char)*s;

	if (s >= m->src_end)
		return false;
	switch (*p) {
	case '.':
		return true;
	case KS_PATTERN_ESC:
		return match_class(c, (unsigned char)p[1]);
	case '[':
		return match_set(m, c, p, ep - 1);
	default:
		return (unsigned char)*p == c;
	}
}

const char *ks_pattern_match(struct ks_pattern *m, const char *s, const char *p);

static const char *max_expand(struct ks_pattern *m, const char *s, const char *p, const char *ep)
{
	ptrdiff_t i = 0;

	while (single_match(m, s + i, p, ep)) {
		ks_pattern_step(m, 1);
		i++;
	}
	for (; i >= 0; i--) {
		const char *r = ks_pattern_match(m, s + i, ep + 1);

		if (r)
			return r;
	}
	return NULL;
}

static const char *min_expand(struct ks_pattern *m, const char *s, const char *p, const char *ep)
{
	for (;;) {
		const char *r = ks_pattern_match(m, s, ep + 1);

		if (r)
			return r;
		if (!single_match(m, s, p, ep))
			return NULL;
		s++;
	}
}

static const char *start_capture(struct ks_pattern *m, const char *s, const char *p, ptrdiff_t what)
{
	const char *r;

	if (m->level >= KS_PATTERN_MAX_CAPTURES)
		luaL_error(m->L, "too many captures");
	m->cap[m->level].init = s;
	m->cap[m->level].len = what;
	m->level++;
	r = ks_pattern_match(m, s, p);
	if (!r)
		m->level--;
	return r;
}

static const char *end_capture(struct ks_pattern *m, const char *s, const char *p)
{
	const char *r;
	int l;

	for (l = m->level - 1; l >= 0 && m->cap[l].len != CAP_UNFINISHED; l--)
		;
	if (l < 0)
		luaL_error(m->L, "invalid pattern capture");
	m->cap[l].len = s - m->cap[l].init;
	r = ks_pattern_match(m, s, p);
	if (!r)
		m->cap[l].len = CAP_UNFINISHED;
	return r;
}

/* %1-%9: the text of a closed capture again. */
static const char *match_capture(struct ks_pattern *m, const char *s, int c)
{
	int l = c - '1';
	size_t len;

	if (l < 0 || l >= m->level || m->cap[l].len == CAP_UNFINISHED)
		luaL_error(m->L, "invalid capture index");
	len = (size_t)m->cap[l].len;
	ks_pattern_step(m, len);
	if ((size_t)(m->src_end - s) >= len && memcmp(m->cap[l].init, s, len) == 0)
		return s + len;
	return NULL;
}

/* %bxy at p (p past "%b"). */
static const char *match_balance(struct ks_pattern *m, const char *s, const char *p)
{
	int depth = 1;

	if (p + 1 >= m->pat_end)
		luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
	if (s >= m->src_end || *s != p[0])
		return NULL;
	while (++s < m->src_end) {
		ks_pattern_step(m, 1);
		if (*s == p[1]) {
			if (--depth == 0)
				return s + 1;
		} else if (*s == p[0]) {
			depth++;
		}
	}
	return NULL;
}

/* %f[set] at p (p past "%f"): s is where the set starts to hold. */
static bool frontier(struct ks_pattern *m, const char *s, const char *p, const char **ep)
{
	int prev, cur;

	if (p >= m->pat_end || *p != '[')
		luaL_error(m->L, "missing '[' after '%%f' in pattern");
	*ep = class_end(m, p);
	prev = s == m->src ? 0 : (unsigned char)s[-1];
	cur = s < m->src_end ? (unsigned char)*s : 0;
	return !match_set(m, prev, p, *ep - 1) && match_set(m, cur, p, *ep - 1);
}

/* One item (a class and its quantifier) at p; NULL: no match. Sets *next when the match
 * goes on at *next (s advanced in *s), else returns the end of the whole match. */
static const char *item(struct ks_pattern *m, const char **s, const char *p, const char **next)
{
	const char *ep = class_end(m, p), *r;
	bool ok = single_match(m, *s, p, ep);
	char q = ep < m->pat_end ? *ep : '\0';

	*next = NULL;
	switch (q) {
	case '?':
		if (ok && (r = ks_pattern_match(m, *s + 1, ep + 1)))
			return r;
		*next = ep + 1;
		return *s;
	case '+':
		return ok ? max_expand(m, *s + 1, p, ep) : NULL;
	case '*':
		return max_expand(m, *s, p, ep);
	case '-':
		return min_expand(m, *s, p, ep);
	default:
		if (!ok)
			return NULL;
		(*s)++;
		*next = ep;
		return *s;
	}
}

/* Where the match of pattern [p, pat_end) at s ends, or NULL. */
const char *ks_pattern_match(struct ks_pattern *m, const char *s, const char *p)
{
	const char *r = s, *next;

	if (++m->depth > MAX_DEPTH)
		luaL_error(m->L, "pattern too complex");
	while (p < m->pat_end && r) {
		ks_pattern_step(m, 1);
		if (*p == '(') {
			r = p + 1 < m->pat_end && p[1] == ')'
				    ? start_capture(m, r, p + 2, CAP_POSITION)
				    : start_capture(m, r, p + 1, CAP_UNFINISHED);
			break;
		}
		if (*p == ')') {
			r = end_capture(m, r, p + 1);
			break;
		}
		if (*p == '$' && p + 1 == m->pat_end) {
			r = r == m->src_end ? r : NULL;
			break;
		}
		if (*p == KS_PATTERN_ESC && p + 1 < m->pat_end && p[1] == 'b') {
			r = match_balance(m, r, p + 2);
			p += 4;
			continue;
		}
		if (*p == KS_PATTERN_ESC && p + 1 < m->pat_end && p[1] == 'f') {
			if (!frontier(m, r, p + 2, &next))
				r = NULL;
			p = next;
			continue;
		}
		if (*p == KS_PATTERN_ESC && p + 1 < m->pat_end && isdigit((unsigned char)p[1])) {
			r = match_capture(m, r, (unsigned char)p[1]);
			p += 2;
			continue;
		}
		r = item(m, &r, p, &next);
		if (!next)
			break;
		p = next;
	}
	m->depth--;
	return r;
}

void ks_pattern_push_capture(struct ks_pattern *m, int i, const char *s, const char *e)
{
	if (i >= m->level) {
		if (i != 0)
			luaL_error(m->L, "invalid capture index");
		lua_pushlstring(m->L, s, (size_t)(e - s));
		return;
	}
	if (m->cap[i].len == CAP_UNFINISHED)
		luaL_error(m->L, "unfinished capture");
	if (m->cap[i].len == CAP_POSITION)
		lua_pushinteger(m->L, m->cap[i].init - m->src + 1);
	else
		lua_pushlstring(m->L, m->cap[i].init, (size_t)m->cap[i].len);
}

/* The captures, or the whole match [s, e) when there are none (s NULL: nothing). */
int ks_pattern_push_captures(struct ks_pattern *m, const char *s, const char *e)
{
	int i, n = m->level == 0 && s ? 1 : m->level;

	luaL_checkstack(m->L, n, "too many captures");
	for (i = 0; i < n; i++)
		ks_pattern_push_capture(m, i, s, e);
	return n;
}

void ks_pattern_init(struct ks_pattern *m, lua_State *L, const char *s, size_t ls, const char *p,
		     size_t lp)
{
	m->L = L;
	m->src = s;
	m->src_end = s + ls;
	m->pat_end = p + lp;
	m->level = m->depth = 0;
	m->steps = 0;
}
