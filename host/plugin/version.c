/*
 * version.c: a new version of a slot's plugin (plugin/candidate.h) taken in or refused:
 * vetted, then refused (the running version kept), swapped under the running controller
 * (same shape), or given a new controller; and the precedence of a ConfigMap plugin over
 * the file plugin of its kind (loader.c says how).
 */
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "ks.h"
#include "log.h"
#include "plugin/candidate.h"
#include "plugin/loader_impl.h"
#include "plugin/plugin_metrics.h"

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* The slot other than self whose plugin reconciles kind.group, or NULL. */
static struct slot *holder(struct ks_loader *l, const struct slot *self, const char *kind,
			   const char *group)
{
	struct slot *s;

	for (s = l->slots; s; s = s->next) {
		const struct ks_plugin *q = s->b ? s->b->plugin : NULL;
		if (s != self && q && strcmp(q->self.kind, kind) == 0 &&
		    strcmp(q->self.group, group) == 0)
			return s;
	}
	return NULL;
}

/* File slot f gives way to the ConfigMap plugin p of slot by (or, b NULL, is loaded while
 * by holds its kind): its controller retires and it waits, shadowed. */
static void shadow(struct ks_loader *l, struct slot *f, const struct slot *by,
		   const struct ks_plugin *p)
{
	free(f->shadowed);
	f->shadowed = ks_xasprintf("%s.%s", p->self.kind, p->self.group);
	ks_info("plugin overridden", "file=%s kind=%s by=%s", f->path, f->shadowed, by->path);
	ks_plugin_metrics_removed(l->pm, f->path);
	if (f->b) {
		ks_binding_retire(l, f->b, "the plugin is overridden by a ConfigMap plugin");
		f->b = NULL;
	}
}

/* Files shadowed by a kind no ConfigMap plugin reconciles any more load again. */
void ks_loader_unshadow(struct ks_loader *l)
{
	struct slot *s, *c;

	for (s = l->slots; s; s = s->next) {
		bool held = false;

		if (!s->shadowed)
			continue;
		for (c = l->slots; c && !held; c = c->next)
			if (c->configmap && c->b) {
				char *k = ks_xasprintf("%s.%s", c->b->plugin->self.kind,
						       c->b->plugin->self.group);
				held = strcmp(k, s->shadowed) == 0;
				free(k);
			}
		if (held)
			continue;
		ks_info("plugin no longer overridden", "file=%s kind=%s", s->path, s->shadowed);
		free(s->shadowed);
		s->shadowed = NULL;
		s->stamp = 0;
		ks_loader_load(l, s);
	}
}

/* c refused: say so in the log, the metrics and, for a ConfigMap (cm), an Event on it. */
static void refused(struct ks_loader *l, struct slot *s, const cJSON *cm, const char *err)
{
	const char *kept = s->b ? "previous version" : "none";

	ks_err("plugin refused", "file=%s error=%s kept=%s", s->path, ks_logq(err), kept);
	ks_plugin_metrics_refused(l->pm, s->path, s->b ? s->b->plugin : NULL, err);
	if (cm && l->o.events) {
		/* A listed object may lack apiVersion and kind: the Event needs them. */
		cJSON *io = cJSON_CreateObject();
		cJSON_AddStringToObject(io, "apiVersion", "v1");
		cJSON_AddStringToObject(io, "kind", "ConfigMap");
		cJSON_AddItemToObject(io, "metadata",
				      cJSON_Duplicate(cJSON_GetObjectItem(cm, "metadata"), true));
		ks_event(l->o.events, io, "Warning", "PluginRejected", "%s refused (kept: %s): %s",
			 base(s->path), kept, err);
		cJSON_Delete(io);
	}
	l->failures++;
}

/* Take in p, a vetted version of s's plugin, or (p NULL) refuse the version err (freed
 * here) says is wrong. */
static void take(struct ks_loader *l, struct slot *s, struct ks_plugin *p, char *err,
		 const cJSON *cm)
{
	struct ks_plugin *old;
	char name[128];
	struct slot *other;

	other = p ? holder(l, s, p->self.kind, p->self.group) : NULL;
	if (other && s->configmap && !other->configmap) {
		shadow(l, other, s, p);
	} else if (other && !s->configmap && other->configmap) {
		shadow(l, s, other, p);
		ks_plugin_free(p, "overridden");
		free(err);
		return;
	} else if (other) {
		err = ks_xasprintf("plugin %s: kind %s.%s is already reconciled by %s",
				   base(s->path), p->self.kind, p->self.group, base(other->path));
		ks_plugin_free(p, "refused");
		p = NULL;
	}
	if (p && !s->configmap && s->shadowed) {
		free(s->shadowed);
		s->shadowed = NULL;
	}
	if (!p) {
		refused(l, s, cm, err);
		free(err);
		return;
	}
	snprintf(name, sizeof(name), "%.*s", (int)(strlen(base(s->path)) - 4), base(s->path));
	if (s->b && ks_plugin_same_shape(s->b->plugin, p)) {
		old = s->b->plugin;
		s->b->plugin = p;
		ks_loader_retire_version(l, old);
		ks_controller_enqueue_all(s->b->ctrl, KS_QUEUE_LOW);
		ks_plugin_metrics_loaded(l->pm, s->path, p, true);
		ks_info("plugin reloaded", "file=%s kind=%s", s->path, p->self.kind);
		return;
	}
	ks_plugin_metrics_loaded(l->pm, s->path, p, s->b != NULL);
	if (s->b)
		ks_binding_retire(l, s->b, "the plugin changed what it reconciles");
	s->b = ks_binding_new(l, p, name);
	ks_info("plugin loaded", "file=%s kind=%s group=%s version=%s finalizer=%s", s->path,
		p->self.kind, p->self.group, p->self.version, p->finalizer ? p->finalizer : "none");
}

/* A version whose shipped checks run (the vetter's verdict comes from the loop). */
struct vetting {
	struct ks_loader *l;
	struct slot *s;
	struct ks_plugin *p;
	cJSON *cm; /* the ConfigMap it comes from, or NULL */
	struct ks_candidate_vet *job;
};

static void vetting_free(struct vetting *v, const char *why)
{
	v->s->vetting = NULL;
	if (v->p)
		ks_plugin_free(v->p, why);
	cJSON_Delete(v->cm);
	free(v);
}

static void verdict(const char *why, void *data)
{
	struct vetting *v = data;
	struct ks_plugin *p = v->p;
	char *err = NULL;

	if (why) {
		err = ks_xasprintf("plugin %s: %s", base(v->s->path), why);
		ks_plugin_free(p, "refused");
		p = NULL;
	}
	v->p = NULL;
	take(v->l, v->s, p, err, v->cm);
	vetting_free(v, "vetted");
}

void ks_loader_cancel_vet(struct ks_loader *l, struct slot *s)
{
	if (!s->vetting)
		return;
	l->o.vet.cancel(s->vetting->job);
	vetting_free(s->vetting, "superseded");
}

void ks_loader_load_text(struct ks_loader *l, struct slot *s, const struct ks_candidate *c,
			 const cJSON *cm)
{
	struct vetting *v;
	struct ks_plugin *p;
	char *err = NULL, *why = NULL;

	ks_loader_cancel_vet(l, s);
	p = ks_candidate_load(&l->o.host, c, &err);
	if (!p || !c->fixtures_dir || !c->path || !l->o.vet.start) {
		take(l, s, p, err, cm);
		return;
	}
	v = ks_xcalloc(1, sizeof(*v));
	*v = (struct vetting){ l, s, p, cm ? cJSON_Duplicate(cm, true) : NULL, NULL };
	v->job = l->o.vet.start(l->loop, c->fixtures_dir, c->path, l->o.host.stdlib_dir, verdict, v,
				&why);
	s->vetting = v;
	if (v->job)
		ks_info("plugin vetting", "file=%s fixtures=%s", s->path, c->fixtures_dir);
	if (!v->job) {
		err = ks_xasprintf("cannot run its fixtures: %s", why);
		verdict(err, v);
		free(err);
		free(why);
	}
}

void ks_loader_load(struct ks_loader *l, struct slot *s)
{
	struct ks_candidate c;
	char *err = NULL;

	if (ks_candidate_read(&c, s->path, &err) != 0) {
		ks_err("cannot read plugin", "file=%s error=%s", s->path, ks_logq(err));
		ks_plugin_metrics_refused(l->pm, s->path, s->b ? s->b->plugin : NULL, err);
		l->failures++;
		free(err);
		return;
	}
	ks_loader_load_text(l, s, &c, NULL);
	ks_candidate_deinit(&c);
}
