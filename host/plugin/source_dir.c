/*
 * source_dir.c: the loader's plugin files, every *.lua of its directory: scanned at each
 * tick and when the directory changes, loaded when a file or its settings change, retired
 * when the file goes.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ks.h"
#include "log.h"
#include "plugin/candidate.h"
#include "plugin/loader_impl.h"
#include "plugin/plugin_metrics.h"

bool ks_loader_is_plugin_file(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && name[0] != '.' && strcmp(name + n - 4, ".lua") == 0 &&
	       strcmp(name, "README.lua") != 0;
}

struct slot *ks_loader_slot(struct ks_loader *l, char *path, bool configmap)
{
	struct slot *s;

	for (s = l->slots; s; s = s->next)
		if (strcmp(s->path, path) == 0)
			break;
	if (s) {
		free(path);
	} else {
		s = ks_xcalloc(1, sizeof(*s));
		s->path = path;
		s->configmap = configmap;
		s->next = l->slots;
		l->slots = s;
	}
	s->seen = true;
	return s;
}

static void drop_gone(struct ks_loader *l)
{
	struct slot **pp = &l->slots, *s;

	while ((s = *pp) != NULL) {
		if (s->seen || s->configmap) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		ks_plugin_metrics_removed(l->pm, s->path);
		ks_loader_cancel_vet(l, s);
		if (s->b) {
			ks_info("plugin removed", "file=%s kind=%s", s->path,
				s->b->plugin->self.kind);
			ks_binding_retire(l, s->b, "the plugin file was removed");
		}
		free(s->shadowed);
		free(s->path);
		free(s);
	}
}

void ks_loader_scan(struct ks_loader *l)
{
	struct dirent *d;
	struct slot *s;
	struct stat st;
	DIR *dir = l->dir ? opendir(l->dir) : NULL;
	char *path;

	if (!l->dir)
		return;
	for (s = l->slots; s; s = s->next)
		s->seen = false;
	if (!dir) {
		ks_warn("cannot read the plugins directory", "dir=%s", l->dir);
		for (s = l->slots; s; s = s->next)
			s->seen = true; /* keep what runs */
		return;
	}
	while ((d = readdir(dir)) != NULL) {
		if (!ks_loader_is_plugin_file(d->d_name))
			continue;
		path = ks_xasprintf("%s/%s", l->dir, d->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		s = ks_loader_slot(l, path, false);
		if (s->stamp == ks_candidate_stamp(s->path, &st))
			continue;
		s->stamp = ks_candidate_stamp(s->path, &st);
		ks_loader_load(l, s);
	}
	closedir(dir);
	drop_gone(l);
}

static void settled(uv_timer_t *t)
{
	ks_loader_scan(t->data);
}

/* An editor's save is several events (truncate, write, close, rename): scan once they
 * have settled, so one edit loads once. */
void ks_loader_dir_changed(uv_fs_event_t *h, const char *file, int events, int status)
{
	struct ks_loader *l = h->data;

	(void)file;
	(void)events;
	(void)status;
	uv_timer_start(&l->debounce, settled, 100, 0);
}
