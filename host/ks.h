#pragma once
/*
 * ks.h: what every unit of the KupenStack host shares: allocation that aborts on
 * out-of-memory (as Redis and Neovim do: a controller that cannot allocate cannot
 * make progress, and a clean abort beats a half-applied change), invariants, a
 * growable buffer, small string helpers, clocks, and reading a whole file (the only I/O).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define KS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KS_MAX(a, b) ((a) > (b) ? (a) : (b))
#define KS_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#if defined(__GNUC__)
#define KS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define KS_NORETURN __attribute__((noreturn))
#else
#define KS_PRINTF(f, a)
#define KS_NORETURN
#endif

/* Abort with file, line and the failed expression. Kept in release builds. */
#define ks_require(cond)                                     \
	do {                                                 \
		if (!(cond))                                 \
			ks_panic(__FILE__, __LINE__, #cond); \
	} while (0)

KS_NORETURN void ks_panic(const char *file, int line, const char *what);

/* Allocators: never return NULL; abort the process on out-of-memory. */
void *ks_xmalloc(size_t n);
void *ks_xcalloc(size_t nmemb, size_t size);
void *ks_xrealloc(void *p, size_t n);
char *ks_xstrdup(const char *s);
char *ks_xstrndup(const char *s, size_t n);
/* printf into a fresh string the caller frees. */
char *ks_xasprintf(const char *fmt, ...) KS_PRINTF(1, 2);
char *ks_xvasprintf(const char *fmt, va_list ap);

/* A growable byte buffer, always NUL-terminated after len. _init/_deinit pair. */
struct ks_buf {
	char *data;
	size_t len;
	size_t cap;
};

void ks_buf_init(struct ks_buf *b);
void ks_buf_deinit(struct ks_buf *b);
void ks_buf_reset(struct ks_buf *b);
void ks_buf_append(struct ks_buf *b, const void *p, size_t n);
void ks_buf_puts(struct ks_buf *b, const char *s);
void ks_buf_printf(struct ks_buf *b, const char *fmt, ...) KS_PRINTF(2, 3);
/* Drop the first n bytes, keeping the rest. */
void ks_buf_consume(struct ks_buf *b, size_t n);
/* Hand the data over to the caller (who frees it) and reset the buffer. */
char *ks_buf_steal(struct ks_buf *b);

/* The whole file at path, NUL-terminated, in a fresh buffer (*len bytes); NULL with
 * *rc = -errno when it cannot be read. Blocking: for start-up and commands, not the loop. */
char *ks_read_file(const char *path, size_t *len, int *rc);

/* Monotonic clock in nanoseconds and wall clock in seconds since the epoch. */
uint64_t ks_now_ns(void);
double ks_wall(void);
/* A uniform random double in [0, 1): for jitter, not for secrets. */
double ks_rand01(void);
/* FNV-1a 64-bit hash of n bytes. */
uint64_t ks_hash(const void *p, size_t n);
