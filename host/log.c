/* log.c: logfmt lines on stderr. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum ks_log_level min_level = KS_LOG_INFO;

static const char *const names[] = { "debug", "info", "warn", "error" };

void ks_log_set_level(enum ks_log_level level)
{
	min_level = level;
}

bool ks_log_enabled(enum ks_log_level level)
{
	return level >= min_level;
}

int ks_log_parse_level(const char *s, enum ks_log_level *out)
{
	for (size_t i = 0; i < KS_ARRAY_SIZE(names); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum ks_log_level)i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*out = KS_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

const char *ks_logq(const char *s)
{
	static char ring[8][512];
	static unsigned next;
	char *out = ring[next++ % KS_ARRAY_SIZE(ring)];
	size_t o = 0, cap = sizeof(ring[0]);

	out[o++] = '"';
	for (; s && *s && o < cap - 6; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20) {
			out[o++] = ' ';
		} else {
			out[o++] = (char)c;
		}
	}
	if (s && *s) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

void ks_log(enum ks_log_level level, const char *msg, const char *kv_fmt, ...)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (level < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "ts=%s.%03ldZ level=%s msg=%s", ts, now.tv_nsec / 1000000, names[level],
		ks_logq(msg));
	if (kv_fmt && *kv_fmt) {
		fputc(' ', stderr);
		va_start(ap, kv_fmt);
		vfprintf(stderr, kv_fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
}
