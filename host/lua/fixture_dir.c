/*
 * fixture_dir.c: `kupenstack plugin test`: finding the plugin folders and their
 * fixtures, and TAP; and the same fixtures run silently on a new plugin version.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ks.h"
#include "lua/fixture.h"
#include "lua/fixture_impl.h"

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s && s[1] ? s + 1 : path;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

struct tally {
	unsigned n, failed;
};

/* Run the fixture in fdir; print its TAP line and diagnosis. */
static void fixture(const struct ks_fixture_src *ps, const char *fdir, uv_loop_t *loop,
		    const char *stdlib, struct tally *t)
{
	struct ks_fixture x = { 0 };
	const char *p, *nl;

	ks_fixture_eval(&x, ps, fdir, loop, stdlib);
	t->n++;
	t->failed += x.diag.len > 0;
	printf("%s %u - %s/%s\n", x.diag.len ? "not ok" : "ok", t->n, ps->name, base(fdir));
	for (p = x.diag.data; p && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		printf("#   %.*s\n", (int)(nl - p), p);
	}
	fflush(stdout);
	ks_fixture_free(&x);
}

/* DIR/X.lua for the folder DIR/X (a plugins directory: fixtures beside the file), or
 * NULL when there is no such file. */
static char *sibling_file(const char *dir)
{
	size_t n = strlen(dir);
	char *f;
	struct stat st;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	f = ks_xasprintf("%.*s.lua", (int)n, dir);
	if (stat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
		free(f);
		f = NULL;
	}
	return f;
}

/* The plugin file of dir: file, its only *.lua, or else the file DIR.lua beside it.
 * NULL after saying why. */
static char *plugin_file(const char *dir, const char *file)
{
	struct dirent **names = NULL;
	char *found = NULL;
	int n, i, count = 0;

	if (file)
		return ks_xstrdup(file);
	n = scandir(dir, &names, NULL, by_name);
	for (i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (len > 4 && strcmp(names[i]->d_name + len - 4, ".lua") == 0 &&
		    !strstr(names[i]->d_name, "_spec.lua") && count++ == 0)
			found = ks_xasprintf("%s/%s", dir, names[i]->d_name);
		free(names[i]);
	}
	free(names);
	if (count == 0 && (found = sibling_file(dir)) != NULL)
		count = 1;
	if (count != 1) {
		fprintf(stderr,
			"kupenstack plugin test: %s holds %d plugin files (*.lua); it "
			"needs exactly one, or --plugin FILE\n",
			dir, count);
		free(found);
		return NULL;
	}
	return found;
}

static char *read_clouds(const char *dir)
{
	static const char *const where[] = { "%s/clouds.yaml", "%s/fixtures/clouds.yaml" };
	char *path, *text = NULL;
	size_t i, len;
	int rc;

	for (i = 0; i < KS_ARRAY_SIZE(where) && !text; i++) {
		path = ks_xasprintf(where[i], dir);
		text = ks_read_file(path, &len, &rc);
		free(path);
	}
	return text;
}

/* dir's clouds.yaml and config.yaml into ps. False with *err when config.yaml is bad. */
static bool read_extras(struct ks_fixture_src *ps, const char *dir, char **err)
{
	ps->clouds_yaml = read_clouds(dir);
	ps->config = ks_fixture_read_yaml(dir, "config.yaml", false, err);
	return !*err;
}

static void src_deinit(struct ks_fixture_src *ps)
{
	free(ps->name);
	free(ps->file);
	free(ps->clouds_yaml);
	cJSON_Delete(ps->config);
}

/* The fixture folders of dir/fixtures, sorted; n of them (free each and the array). */
static int fixture_names(const char *fdir, struct dirent ***names)
{
	int n = scandir(fdir, names, NULL, by_name);

	return n < 0 ? 0 : n;
}

/* Every fixture of the plugin folder dir. Returns false when it could not start. */
static bool plugin_dir(const char *dir, const struct ks_fixture_opts *o, uv_loop_t *loop,
		       struct tally *t)
{
	struct ks_fixture_src ps = { .dir = dir };
	char *file = plugin_file(dir, o->plugin), *fdir = ks_xasprintf("%s/fixtures", dir), *f;
	char *src = NULL, *err = NULL;
	struct dirent **names = NULL;
	int n, i, rc;
	bool ok;

	if (!file)
		goto out;
	ps.src = src = ks_read_file(file, &ps.len, &rc);
	if (!src) {
		fprintf(stderr, "kupenstack plugin test: %s: %s\n", file, strerror(-rc));
		goto out;
	}
	ps.name = ks_xstrdup(base(dir));
	ps.file = ks_xstrdup(base(file));
	if (!read_extras(&ps, dir, &err)) {
		fprintf(stderr, "kupenstack plugin test: %s\n", err);
		free(src);
		src = NULL;
		goto out;
	}
	n = fixture_names(fdir, &names);
	for (i = 0; i < n; i++) {
		f = ks_xasprintf("%s/%s", fdir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && is_dir(f))
			fixture(&ps, f, loop, o->stdlib_dir, t);
		free(f);
		free(names[i]);
	}
	free(names);
out:
	ok = src != NULL;
	src_deinit(&ps);
	free(err);
	free(file);
	free(fdir);
	free(src);
	return ok;
}

/* Run the fixture fdir of ps into *err (when it fails and *err is not set yet). */
static void vet_one(const struct ks_fixture_src *ps, const char *fdir, uv_loop_t *loop,
		    const char *stdlib, char **err)
{
	struct ks_fixture x = { 0 };
	const char *nl;

	ks_fixture_eval(&x, ps, fdir, loop, stdlib);
	if (x.diag.len && !*err) {
		nl = strchr(x.diag.data, '\n');
		*err = ks_xasprintf("fixture %s/%s failed: %.*s", ps->name, base(fdir),
				    (int)(nl - x.diag.data), x.diag.data);
	}
	ks_fixture_free(&x);
}

int ks_fixture_vet(const char *dir, const char *file, const char *src, size_t len,
		   const char *stdlib_dir, char **err)
{
	struct ks_fixture_src ps = { .dir = dir, .src = src, .len = len };
	char *fdir = ks_xasprintf("%s/fixtures", dir), *f;
	struct dirent **names = NULL;
	uv_loop_t loop;
	int n = 0, i;

	ps.name = ks_xstrdup(base(dir));
	ps.file = ks_xstrdup(file);
	uv_loop_init(&loop);
	if (read_extras(&ps, dir, err))
		n = fixture_names(fdir, &names);
	for (i = 0; i < n; i++) {
		f = ks_xasprintf("%s/%s", fdir, names[i]->d_name);
		if (!*err && names[i]->d_name[0] != '.' && is_dir(f))
			vet_one(&ps, f, &loop, stdlib_dir, err);
		free(f);
		free(names[i]);
	}
	free(names);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	src_deinit(&ps);
	free(fdir);
	return *err ? -EINVAL : 0;
}

static bool has_fixtures(const char *dir)
{
	char *f = ks_xasprintf("%s/fixtures", dir);
	bool yes = is_dir(f);

	free(f);
	return yes;
}

int ks_fixture_run(const char *dir, const struct ks_fixture_opts *o)
{
	struct tally t = { 0 };
	struct dirent **names = NULL;
	bool ok = true;
	uv_loop_t loop;
	int n = 0, i;
	char *sub;

	uv_loop_init(&loop);
	if (has_fixtures(dir)) {
		ok = plugin_dir(dir, o, &loop, &t);
	} else {
		n = scandir(dir, &names, NULL, by_name);
		for (i = 0; i < n; i++) {
			sub = ks_xasprintf("%s/%s", dir, names[i]->d_name);
			if (names[i]->d_name[0] != '.' && has_fixtures(sub))
				ok &= plugin_dir(sub, o, &loop, &t);
			free(sub);
			free(names[i]);
		}
		free(names);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (t.n == 0) {
		fprintf(stderr,
			"kupenstack plugin test: no fixtures under %s (DIR/fixtures/NAME/, "
			"or DIR/PLUGIN/fixtures/NAME/)\n",
			dir);
		return 2;
	}
	printf("1..%u\n%u passed, %u failed\n", t.n, t.n - t.failed, t.failed);
	return t.failed || !ok ? 1 : 0;
}
