/* chart.c: a chart's content digest (chart.h). */
#include "chart.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"

#define MAX_FILES 10000		     /* files in a chart directory */
#define MAX_CHART_BYTES (256u << 20) /* bytes they hold */
#define MAX_DEPTH 16		     /* directory levels (symbolic links are followed) */

struct digest {
	struct ks_digest md;
	size_t files;
	uint64_t bytes;
	bool framed; /* a directory's file: its path and length mixed in too */
};

/* Mix one file into d: its bytes, and in a directory its relative path and length. */
static int hash_file(struct digest *d, const char *path, const char *rel)
{
	char buf[16384];
	uint64_t len = 0;
	unsigned char le[8];
	ssize_t n;
	int fd, rc = 0;

	if (++d->files > MAX_FILES)
		return -EFBIG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY); /* /proc/kmsg: no hang */
	if (fd < 0)
		return -errno;
	if (d->framed)
		ks_digest_update(&d->md, rel, strlen(rel) + 1);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		ks_digest_update(&d->md, buf, (size_t)n);
		len += (uint64_t)n;
		d->bytes += (uint64_t)n;
		if (d->bytes > MAX_CHART_BYTES) {
			rc = -EFBIG;
			break;
		}
	}
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)(len >> (8 * i));
	if (d->framed)
		ks_digest_update(&d->md, le, sizeof(le));
	close(fd);
	return rc;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Hash every regular file under path (a buffer of PATH_MAX), in name order. */
static int walk(struct digest *d, char *path, size_t root_len, int depth)
{
	size_t len = strlen(path);
	struct dirent **names;
	struct stat st;
	int i, n, rc = 0;

	if (depth > MAX_DEPTH)
		return -ELOOP;
	n = scandir(path, &names, NULL, by_name);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;

		if (rc || !strcmp(name, ".") || !strcmp(name, ".."))
			goto next;
		if (len + 1 + strlen(name) >= PATH_MAX) {
			rc = -ENAMETOOLONG;
			goto next;
		}
		snprintf(path + len, PATH_MAX - len, "/%s", name);
		if (stat(path, &st) != 0)
			rc = -errno;
		else if (S_ISDIR(st.st_mode))
			rc = walk(d, path, root_len, depth + 1);
		else if (S_ISREG(st.st_mode))
			rc = hash_file(d, path, path + root_len);
		path[len] = '\0';
	next:
		free(names[i]);
	}
	free(names);
	return rc;
}

int ks_chart_digest(const char *chart, char out[KS_CHART_DIGEST_LEN + 1])
{
	struct digest d = { 0 };
	char path[PATH_MAX];
	struct stat st;
	int rc;

	out[0] = '\0';
	if (stat(chart, &st) != 0)
		return -errno;
	if (snprintf(path, sizeof(path), "%s", chart) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return -EINVAL;
	ks_digest_init(&d.md);
	d.framed = S_ISDIR(st.st_mode);
	rc = d.framed ? walk(&d, path, strlen(path), 0) : hash_file(&d, path, "");
	ks_digest_finish(&d.md);
	if (!rc)
		snprintf(out, KS_CHART_DIGEST_LEN + 1, "sha256:%s", d.md.sha256_hex);
	ks_digest_deinit(&d.md);
	return rc;
}
