/*
 * candidate.c: a new plugin version: read, loaded and configured.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ks.h"
#include "plugin/candidate.h"
#include "yaml.h"

char *ks_candidate_settings_name(const char *name)
{
	size_t n = strlen(name);

	if (n > 4 && strcmp(name + n - 4, ".lua") == 0)
		n -= 4;
	return ks_xasprintf("%.*s.config.yaml", (int)n, name);
}

/* Apply c's settings to p. Returns 0, or -EINVAL with *err (free it) naming them. */
static int configure(struct ks_plugin *p, const struct ks_candidate *c, char **err)
{
	char *file = ks_candidate_settings_name(c->name), *why = NULL;
	cJSON *settings = NULL;
	int rc = 0;

	if (c->settings) {
		settings = ks_yaml_parse(c->settings, c->settings_len, &why);
		if (!settings)
			rc = -EINVAL;
	}
	if (rc == 0)
		rc = ks_plugin_configure(p, settings, &why);
	if (rc != 0)
		*err = ks_xasprintf("%s: %s", file, why);
	cJSON_Delete(settings);
	free(why);
	free(file);
	return rc;
}

struct ks_plugin *ks_candidate_load(const struct ks_lua_host *host, const struct ks_candidate *c,
				    char **err)
{
	struct ks_plugin *p;
	char *why = NULL;

	p = ks_plugin_load(host, c->name, c->src, c->len, err);
	if (!p)
		return NULL;
	if (configure(p, c, &why) != 0) {
		*err = ks_xasprintf("plugin %s: %s", c->name, why);
		free(why);
		ks_plugin_free(p, "refused");
		p = NULL;
	}
	return p;
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* DIR/X.config.yaml, the settings of the file DIR/X.lua (free it). */
static char *settings_path(const char *path)
{
	char *name = ks_candidate_settings_name(base(path));
	char *p = ks_xasprintf("%.*s%s", (int)(base(path) - path), path, name);

	free(name);
	return p;
}

/* DIR/X, the plugin folder of DIR/X.lua when it holds fixtures/ (free it), or NULL. */
static char *fixtures_dir(const char *path)
{
	size_t n = strlen(path);
	char *dir = ks_xasprintf("%.*s", (int)(n > 4 ? n - 4 : n), path);
	char *f = ks_xasprintf("%s/fixtures", dir);
	struct stat st;

	if (stat(f, &st) != 0 || !S_ISDIR(st.st_mode)) {
		free(dir);
		dir = NULL;
	}
	free(f);
	return dir;
}

int ks_candidate_read(struct ks_candidate *c, const char *path, char **err)
{
	char *cfg = settings_path(path), *src, *settings = NULL;
	int rc;

	*c = (struct ks_candidate){ .name = base(path), .path = path };
	src = ks_read_file(path, &c->len, &rc);
	if (!src) {
		*err = ks_xstrdup(strerror(-rc));
		goto out;
	}
	settings = ks_read_file(cfg, &c->settings_len, &rc);
	if (!settings && rc != -ENOENT) {
		*err = ks_xasprintf("%s: %s", cfg, strerror(-rc));
		free(src);
		goto out;
	}
	rc = 0;
	c->src = src;
	c->settings = settings;
	c->fixtures_dir = fixtures_dir(path);
out:
	free(cfg);
	return rc;
}

void ks_candidate_deinit(struct ks_candidate *c)
{
	free((char *)c->src);
	free((char *)c->settings);
	free((char *)c->fixtures_dir);
}

uint64_t ks_candidate_stamp(const char *path, const struct stat *st)
{
	char *cfg = settings_path(path);
	struct stat cs;
	int64_t v[6] = { st->st_mtim.tv_sec, st->st_mtim.tv_nsec, st->st_size };

	if (stat(cfg, &cs) == 0) {
		v[3] = cs.st_mtim.tv_sec;
		v[4] = cs.st_mtim.tv_nsec;
		v[5] = cs.st_size + 1;
	}
	free(cfg);
	return ks_hash(v, sizeof(v));
}
