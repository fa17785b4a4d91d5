#pragma once
/*
 * log.h: one logfmt line per event on stderr:
 *   ts=2026-11-24T13:30:00.123Z level=info msg="watch reopened" kind=Instance rv=123
 * The host is single-threaded (one libuv loop), so nothing here locks. Never log a
 * secret: tokens, keys and passwords are not passed to these functions.
 */
#include <stdbool.h>

#include "ks.h"

enum ks_log_level {
	KS_LOG_DEBUG,
	KS_LOG_INFO,
	KS_LOG_WARN,
	KS_LOG_ERROR,
};

void ks_log_set_level(enum ks_log_level level);
bool ks_log_enabled(enum ks_log_level level);
/* Parse "debug", "info", "warn" or "error". Returns 0, or -EINVAL. */
int ks_log_parse_level(const char *s, enum ks_log_level *out);

/*
 * Log msg with the key=value pairs kv_fmt formats (may be NULL). Values that may
 * hold spaces or quotes go through ks_logq().
 */
void ks_log(enum ks_log_level level, const char *msg, const char *kv_fmt, ...) KS_PRINTF(3, 4);

/*
 * Quote and escape s for a logfmt value. Returns one of a small ring of static
 * buffers, valid until eight more calls; long values are cut with "...".
 */
const char *ks_logq(const char *s);

#define ks_debug(msg, ...) ks_log(KS_LOG_DEBUG, msg, __VA_ARGS__)
#define ks_info(msg, ...) ks_log(KS_LOG_INFO, msg, __VA_ARGS__)
#define ks_warn(msg, ...) ks_log(KS_LOG_WARN, msg, __VA_ARGS__)
#define ks_err(msg, ...) ks_log(KS_LOG_ERROR, msg, __VA_ARGS__)
