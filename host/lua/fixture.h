#pragma once
/*
 * fixture.h: `kupenstack plugin test DIR`: a plugin's fixture folders, run offline. Each
 * fixture gives an input object, the objects the plugin's kube.get/list see, the HTTP
 * calls the plugin must make with their canned answers, and the expected result; the
 * plugin runs in the real sandbox (ks_plugin_load) with ks.core.http and the writes of
 * ks.core.kube answered by a fake (lua/fake.h), and the .status is computed with
 * ks_status_next as the host would write it. The layout and the files are described in
 * plugins/README.md, "Testing a plugin":
 *
 *   DIR/widget.lua                     the plugin (one *.lua; a symlink is fine)
 *   DIR/clouds.yaml                    optional: ks.core.config's clouds_yaml
 *   DIR/config.yaml                    optional: the plugin's settings (ctx.config)
 *   DIR/fixtures/NAME/object.yaml      the object reconciled (finalized when deleting)
 *   DIR/fixtures/NAME/cache/NAME.yaml  optional: what kube.get/list/fetch see
 *   DIR/fixtures/NAME/http.yaml        optional: the HTTP calls and their answers
 *   DIR/fixtures/NAME/expected.yaml    the expected result
 *
 * or DIR holding several such plugin folders. A folder without a *.lua tests the file
 * beside it of its name: PLUGINS/widget/fixtures/ tests PLUGINS/widget.lua.
 */
#include <stddef.h>

struct ks_fixture_opts {
	const char *stdlib_dir; /* the Lua library; NULL: none */
	const char *plugin;	/* the plugin file; NULL: the one *.lua of each plugin folder */
};

/*
 * Run every fixture under dir, printing TAP ("ok N - plugin/fixture", "#" lines saying
 * what differs) and "N passed, N failed" on stdout. Returns 0 when every fixture passed,
 * 1 when one failed, 2 when dir holds no fixtures (said on stderr).
 */
int ks_fixture_run(const char *dir, const struct ks_fixture_opts *o);

/*
 * Run every fixture of dir/fixtures (dir's clouds.yaml and config.yaml apply) against
 * src, the text of plugin file (named so in errors), on a loop of its own, printing
 * nothing: a new version checked before it replaces the running one (lua/loader.h).
 * Returns 0 when every fixture passed or there is none, or -EINVAL with *err (free it)
 * naming the first fixture that failed and its first difference.
 */
int ks_fixture_vet(const char *dir, const char *file, const char *src, size_t len,
		   const char *stdlib_dir, char **err);
