/*
 * binding.c: one plugin version's controller, started, drained and retired; versions
 * replaced under a running controller, freed once their reconciles are done.
 */
#include <stdlib.h>

#include "ks.h"
#include "plugin/consume.h"
#include "plugin/loader_impl.h"

void ks_binding_run(struct ks_loader *l, struct binding *b)
{
	ks_controller_start(b->ctrl);
	b->consumers =
		ks_consumers_start(l->loop, l->o.amqp_url, &b->plugin, b->ctrl, l->o.metrics);
}

void ks_binding_stop_consumers(struct binding *b)
{
	ks_consumers_stop(b->consumers);
	b->consumers = NULL;
}

struct binding *ks_binding_new(struct ks_loader *l, struct ks_plugin *p, const char *name)
{
	struct binding *b = ks_xcalloc(1, sizeof(*b));

	b->l = l;
	b->plugin = p;
	b->ctrl =
		ks_plugin_controller(l->loop, l->o.kube, l->o.manager, name, &b->plugin, b->watches,
				     &(struct ks_controller_opts){
					     .concurrency = l->o.concurrency,
					     .resync = l->o.resync,
					     .events = l->o.events,
					     .metrics = l->o.metrics,
				     });
	if (l->started && !l->deferred)
		ks_binding_run(l, b);
	return b;
}

void ks_loader_maybe_done(struct ks_loader *l)
{
	if (l->stopping && l->draining == 0 && l->done) {
		void (*done)(void *) = l->done;
		l->done = NULL;
		done(l->done_data);
	}
}

void ks_binding_retired(void *data)
{
	struct binding *b = data;
	struct ks_loader *l = b->l;

	ks_list_del(&b->link);
	ks_controller_free(b->ctrl);
	ks_plugin_free(b->plugin, "retired");
	free(b);
	l->draining--;
	if (!l->stopping_free)
		ks_loader_maybe_done(l);
}

/* Stop b's consumers and its controller; retired() frees b once its in-flight reconciles
 * are done. */
void ks_binding_drain(struct ks_loader *l, struct binding *b)
{
	ks_binding_stop_consumers(b);
	l->draining++;
	ks_list_add_tail(&l->drains, &b->link);
	ks_controller_stop(b->ctrl, ks_binding_retired, b);
}

/* Stop b's controller: its plugin's tasks are cancelled first so the drain is quick. */
void ks_binding_retire(struct ks_loader *l, struct binding *b, const char *why)
{
	ks_lua_cancel_all(b->plugin->lua, why);
	ks_binding_drain(l, b);
}

/* In-flight reconciles finish on the version they started with; it is freed once they
 * have (checked at each tick), or at once when none runs. */
void ks_loader_retire_version(struct ks_loader *l, struct ks_plugin *old)
{
	if (ks_lua_tasks(old->lua) == 0) {
		ks_plugin_free(old, "replaced");
		return;
	}
	if (l->nzombies == KS_ARRAY_SIZE(l->zombies)) {
		ks_plugin_free(old, "the plugin was replaced by a new version (too many versions "
				    "still finishing)");
		return;
	}
	l->zombies[l->nzombies++] = old;
}

void ks_loader_reap_versions(struct ks_loader *l, bool all)
{
	size_t i = 0;

	while (i < l->nzombies) {
		if (all || ks_lua_tasks(l->zombies[i]->lua) == 0) {
			ks_plugin_free(l->zombies[i], "the plugin was replaced by a new version");
			l->zombies[i] = l->zombies[--l->nzombies];
		} else {
			i++;
		}
	}
}
