#pragma once
/*
 * candidate.h: a new version of a plugin, checked before it may replace the running
 * one: loaded in a fresh state (the table's shape and its config_schema), configured
 * with the operator's settings, then vetted: the command that assembles the operator
 * passes a vet function (cmd/app.c passes the offline fixture run of fixture/fixture.h),
 * so the plugin lifecycle never includes the test harness. The loader (plugin/loader.h)
 * keeps the running version when any of these fails.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lua/engine.h"
#include "plugin/plugin.h"

struct ks_candidate {
	const char *name; /* the plugin file's base name, "widget.lua" */
	const char *src;
	size_t len;
	const char *settings; /* the text of NAME.config.yaml (widget.config.yaml), or NULL */
	size_t settings_len;
	const char *fixtures_dir; /* a plugin folder holding fixtures/, or NULL: none */
};

/*
 * A vet: 0 when the candidate's text (src, len) of the plugin file `file` passes the
 * checks shipped in the folder dir; otherwise -1 with *err (free it) saying which.
 */
typedef int (*ks_candidate_vet_fn)(const char *dir, const char *file, const char *src, size_t len,
				   const char *stdlib_dir, char **err);

/*
 * Load and check c in a new state on host; vet (or NULL: none) runs when c has a
 * fixtures_dir. Returns the plugin, or NULL with *err (free
 * it) saying why, prefixed "plugin NAME: ": the field, the setting (with the settings
 * file's name) or the fixture that failed.
 */
struct ks_plugin *ks_candidate_load(const struct ks_lua_host *host, const struct ks_candidate *c,
				    ks_candidate_vet_fn vet, char **err);

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
