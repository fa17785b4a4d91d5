#pragma once
/*
 * chart.h: the content digest of a Helm chart, so that a chart is known by what it holds,
 * not by its `version:` (the same version string can carry other content). FNV-1a 64
 * over every regular file of a chart directory, in name order, mixing each file's path
 * relative to the chart, its bytes and its length (symbolic links are followed, at most 16
 * levels deep), or over a .tgz's bytes. Blocking file I/O: host/helm.c runs it on libuv's
 * thread pool.
 */
#include <stdint.h>

/*
 * The digest of chart (a directory or a file) into *out. Returns 0, -EFBIG (more than
 * 10,000 files or 256 MiB), -ELOOP (too deep), -ENAMETOOLONG, -EINVAL (neither a directory
 * nor a regular file) or the -errno of a failed stat, open or read; *out is set either way.
 */
int ks_chart_digest(const char *chart, uint64_t *out);
