/* chart.c: a chart's content digest (chart.h). */
#include "chart.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 10000		     /* files in a chart directory */
#define MAX_CHART_BYTES (256u << 20) /* bytes they hold */
#define MAX_DEPTH 16		     /* directory levels (symbolic links are followed) */

struct digest {
	uint64_t h;
	size_t files;
	uint64_t bytes;
};

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--) {
		*h ^= *s++;
		*h *= 0x100000001b3ull;
	}
}

/* Mix the relative path, the contents and the length of one file into d. */
static int hash_file(struct digest *d, const char *path, const char *rel)
{
	char buf[16384];
	uint64_t len = 0;
	ssize_t n;
	int fd, rc = 0;

	if (++d->files > MAX_FILES)
		return -EFBIG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY); /* /proc/kmsg: no hang */
	if (fd < 0)
		return -errno;
	fnv(&d->h, rel, strlen(rel) + 1);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		fnv(&d->h, buf, (size_t)n);
		len += (uint64_t)n;
		d->bytes += (uint64_t)n;
		if (d->bytes > MAX_CHART_BYTES) {
			rc = -EFBIG;
			break;
		}
	}
	fnv(&d->h, &len, sizeof(len));
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

int ks_chart_digest(const char *chart, uint64_t *out)
{
	struct digest d = { .h = 0xcbf29ce484222325ull };
	char path[PATH_MAX];
	struct stat st;
	int rc;

	if (stat(chart, &st) != 0)
		return -errno;
	if (snprintf(path, sizeof(path), "%s", chart) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (S_ISDIR(st.st_mode))
		rc = walk(&d, path, strlen(path), 0);
	else if (S_ISREG(st.st_mode))
		rc = hash_file(&d, path, "");
	else
		rc = -EINVAL;
	*out = d.h;
	return rc;
}
