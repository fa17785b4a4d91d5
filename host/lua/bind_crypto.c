/*
 * bind_crypto.c: ks.core.crypto: random bytes from OpenSSL's CSPRNG (RAND_bytes) and
 * SHA-256, for what must not be guessed (a generated secret key) or must be known by its
 * content (a chart fetched from a repository).
 *
 *   s = crypto.random(n)           -- n random bytes (1..4096)
 *   s = crypto.token(n[, alphabet]) -- n characters drawn uniformly from alphabet
 *                                   -- (default [A-Za-z0-9]; 2..256 distinct bytes)
 *   hex = crypto.sha256(s)          -- the SHA-256 of s, 64 lowercase hex digits
 *
 * Raises when OpenSSL cannot give random bytes: a weak value is never returned instead.
 * Every call is counted in kupenstack_crypto_random_total (random and token) so that a
 * test can see the secure source in use.
 */
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ks.h"
#include "lua/bind.h"
#include "lua/engine.h"
#include "metrics.h"

#define MAX_RANDOM 4096

static const char ALNUM[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static void count(lua_State *L, const char *fn)
{
	struct ks_metrics *m = ks_lua_host(ks_lua_from(L))->metrics;
	struct ks_metric_family *f;

	if (!m)
		return;
	f = ks_metrics_counter(m, "kupenstack_crypto_random_total",
			       "Calls of ks.core.crypto's random sources (OpenSSL RAND_bytes), "
			       "by function.",
			       KS_LABELS("fn"));
	ks_metric_inc(ks_metric_child(f, KS_LABELS(fn)));
}

static void fill(lua_State *L, unsigned char *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1)
		luaL_error(L, "crypto: OpenSSL could not give random bytes");
}

static size_t check_len(lua_State *L, const char *fn)
{
	lua_Number n = luaL_checknumber(L, 1);

	if (n < 1 || n > MAX_RANDOM || n != (lua_Number)(size_t)n)
		luaL_error(L, "crypto.%s: n must be a whole number of 1..%d", fn, MAX_RANDOM);
	return (size_t)n;
}

static int random_(lua_State *L)
{
	unsigned char buf[MAX_RANDOM];
	size_t n = check_len(L, "random");

	fill(L, buf, n);
	count(L, "random");
	lua_pushlstring(L, (const char *)buf, n);
	OPENSSL_cleanse(buf, n);
	return 1;
}

/* n characters of alphabet, each drawn uniformly: a byte at or past the largest multiple
 * of the alphabet's size is drawn again (no modulo bias). */
static int token(lua_State *L)
{
	unsigned char out[MAX_RANDOM], pool[256];
	size_t n = check_len(L, "token"), alen, got = 0, used = sizeof(pool);
	const char *alpha = luaL_optlstring(L, 2, ALNUM, &alen);
	unsigned limit;

	if (alen < 2 || alen > 256)
		return luaL_error(L, "crypto.token: the alphabet must hold 2..256 characters");
	for (size_t i = 0; i < alen; i++)
		if (memchr(alpha, alpha[i], i))
			return luaL_error(L, "crypto.token: the alphabet repeats '%c'", alpha[i]);
	limit = 256 - 256 % (unsigned)alen;
	while (got < n) {
		if (used == sizeof(pool)) {
			fill(L, pool, sizeof(pool));
			used = 0;
		}
		if (pool[used] < limit)
			out[got++] = (unsigned char)alpha[pool[used] % alen];
		used++;
	}
	count(L, "token");
	lua_pushlstring(L, (const char *)out, n);
	OPENSSL_cleanse(out, n);
	OPENSSL_cleanse(pool, sizeof(pool));
	return 1;
}

static int sha256(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	if (EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		return luaL_error(L, "crypto.sha256: OpenSSL failed");
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	lua_pushlstring(L, hex, 2 * (size_t)mdlen);
	return 1;
}

int ks_lua_open_crypto(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "random", random_ },
		{ "token", token },
		{ "sha256", sha256 },
		{ NULL, NULL },
	};

	luaL_newlib(L, fns);
	return 1;
}
