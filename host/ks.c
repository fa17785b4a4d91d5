/* ks.c: allocation, invariants, buffers, clocks. */
#include <errno.h>
#include "ks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ks_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "level=fatal msg=\"invariant failed\" at=%s:%d what=\"%s\"\n", file, line,
		what);
	fflush(stderr);
	abort();
}

static void oom(size_t n)
{
	fprintf(stderr, "level=fatal msg=\"out of memory\" bytes=%zu\n", n);
	abort();
}

void *ks_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom(n);
	return p;
}

void *ks_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom(nmemb * size);
	return p;
}

void *ks_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom(n);
	return q;
}

char *ks_xstrdup(const char *s)
{
	return ks_xstrndup(s, strlen(s));
}

char *ks_xstrndup(const char *s, size_t n)
{
	char *p = ks_xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *ks_xvasprintf(const char *fmt, va_list ap)
{
	va_list cp;
	int n;
	char *p;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	ks_require(n >= 0);
	p = ks_xmalloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *ks_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = ks_xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

void ks_buf_init(struct ks_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void ks_buf_deinit(struct ks_buf *b)
{
	free(b->data);
	ks_buf_init(b);
}

void ks_buf_reset(struct ks_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static void reserve(struct ks_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	b->cap = b->cap ? b->cap : 64;
	while (b->cap < need)
		b->cap *= 2;
	b->data = ks_xrealloc(b->data, b->cap);
}

void ks_buf_append(struct ks_buf *b, const void *p, size_t n)
{
	reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void ks_buf_puts(struct ks_buf *b, const char *s)
{
	ks_buf_append(b, s, strlen(s));
}

void ks_buf_printf(struct ks_buf *b, const char *fmt, ...)
{
	va_list ap, cp;
	int n;

	va_start(ap, fmt);
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	ks_require(n >= 0);
	reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	va_end(ap);
}

void ks_buf_consume(struct ks_buf *b, size_t n)
{
	ks_require(n <= b->len);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	if (b->data)
		b->data[b->len] = '\0';
}

char *ks_buf_steal(struct ks_buf *b)
{
	char *p = b->data ? b->data : ks_xstrdup("");

	ks_buf_init(b);
	return p;
}

uint64_t ks_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double ks_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ks_rand01(void)
{
	static uint64_t s;

	if (!s)
		s = ks_now_ns() | 1;
	/* xorshift64* */
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return (double)((s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

uint64_t ks_hash(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ull;
	}
	return h;
}

char *ks_read_file(const char *path, size_t *len, int *rc)
{
	FILE *f = fopen(path, "rb");
	struct ks_buf b;
	char chunk[8192];
	size_t n;

	*rc = 0;
	if (!f) {
		*rc = -errno;
		return NULL;
	}
	ks_buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		ks_buf_append(&b, chunk, n);
	if (ferror(f))
		*rc = -EIO;
	fclose(f);
	if (*rc) {
		ks_buf_deinit(&b);
		return NULL;
	}
	*len = b.len;
	return ks_buf_steal(&b);
}
