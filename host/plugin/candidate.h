#pragma once
/*
 * candidate.h: a new version of a plugin, checked before it may replace the running
 * one: loaded in a fresh state (the table's shape and its config_schema), configured
 * with the operator's settings (ks_candidate_load), then vetted: the command that
 * assembles the operator passes a vetter (cmd/vet.c runs the offline fixtures of
 * fixture/fixture.h in a child process), so the plugin lifecycle never includes the test
 * harness, and the vet runs while the loop serves everything else. The loader
 * (plugin/loader.h) keeps the running version when any of these fails.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <uv.h>

#include "lua/engine.h"
#include "plugin/plugin.h"

struct ks_candidate {
	const char *name; /* the plugin file's base name, "widget.lua" */
	const char *src;
	size_t len;
	const char *settings; /* the text of NAME.config.yaml (widget.config.yaml), or NULL */
	size_t settings_len;
	const char *fixtures_dir; /* a plugin folder holding fixtures/, or NULL: none */
	const char *path;	  /* the plugin file read (ks_candidate_read), or NULL */
};

struct ks_candidate_vet; /* a vet under way */

/* A vet's verdict: err NULL when the candidate passed, else which check failed (valid
 * during the call only). */
typedef void (*ks_candidate_verdict_fn)(const char *err, void *data);

/*
 * The checks shipped beside a plugin file, run asynchronously on the loop. start begins
 * checking the plugin file path against the checks of the folder dir (its fixtures/)
 * with the Lua library stdlib_dir: it returns the vet under way, whose verdict comes once
 * from the loop unless it is cancelled first; or NULL with *err (free it) when it cannot
 * start, and then cb never runs. cancel (before the verdict) ends it: cb never runs, and
 * the vet frees itself.
 */
struct ks_candidate_vetter {
	struct ks_candidate_vet *(*start)(uv_loop_t *loop, const char *dir, const char *path,
					  const char *stdlib_dir, ks_candidate_verdict_fn cb,
					  void *data, char **err);
	void (*cancel)(struct ks_candidate_vet *v);
};

/*
 * Load and check c in a new state on host: the table, its config_schema and c's
 * settings (not the fixtures: a vetter runs those). Returns the plugin, or NULL with
 * *err (free it) saying why, prefixed "plugin NAME: ": the field or the setting (with
 * the settings file's name) that failed.
 */
struct ks_plugin *ks_candidate_load(const struct ks_lua_host *host, const struct ks_candidate *c,
				    char **err);

/* The name of the settings of the plugin file name: "widget.lua" -> "widget.config.yaml"
 * (free it). */
char *ks_candidate_settings_name(const char *name);

/*
 * Read the candidate of the plugin file path, DIR/X.lua: its text, the settings of
 * DIR/X.config.yaml when that exists, and DIR/X as fixtures_dir when DIR/X/fixtures/ is
 * a folder. Returns 0, or -errno with *err (free it) naming the file that cannot be
 * read. Free what it read with ks_candidate_deinit() (only then).
 */
int ks_candidate_read(struct ks_candidate *c, const char *path, char **err);
void ks_candidate_deinit(struct ks_candidate *c);
/* What changes when DIR/X.lua (st: its stat) or its settings file changes. */
uint64_t ks_candidate_stamp(const char *path, const struct stat *st);
