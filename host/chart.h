#pragma once
/*
 * chart.h: the content digest of a Helm chart, so that a chart is known by what it holds,
 * not by its `version:` (the same version string can carry other content). SHA-256
 * (host/digest.h): of a .tgz, its bytes (what `sha256sum` prints); of a chart directory, every
 * regular file in name order, each as its path relative to the chart, a NUL, its bytes and
 * its length (8 bytes, little-endian), symbolic links followed, at most 16 levels deep.
 * Blocking file I/O: run it on libuv's thread pool.
 */
#define KS_CHART_DIGEST_LEN 71 /* "sha256:" and 64 hex digits */

/*
 * The digest of chart (a directory or a file) into out, "sha256:<64 hex>". Returns 0,
 * -EFBIG (more than 10,000 files or 256 MiB), -ELOOP (too deep), -ENAMETOOLONG, -EINVAL
 * (neither a directory nor a regular file) or the -errno of a failed stat, open or read;
 * out is "" unless 0 is returned.
 */
int ks_chart_digest(const char *chart, char out[KS_CHART_DIGEST_LEN + 1]);
