#pragma once
/*
 * fake.h: alternate answers for the calls of a plugin that reach the world: ks.core.http,
 * the ks.core.kube calls that go to the API server (fetch, apply, create, patch, delete)
 * and ctx.event. `kupenstack plugin test` answers them from fixture files;
 * `kupenstack plugin run --dry-run` lets reads through and prints the writes.
 *
 * A host (struct ks_lua_host) whose .fake is set hands those calls to it. A call the
 * fake answers still yields: the answer resumes the task from a zero-delay timer, never
 * from inside the call, so plugin code sees what it sees with real I/O.
 */
#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <lua.h>

#include "ks.h"
#include "kube.h"

struct ks_lua_fake_http {
	const char *method; /* "GET" when the plugin named none */
	const char *url;
	const char *const *headers; /* "Name: value", NULL-terminated */
	const char *body;	    /* NULL: none */
	size_t body_len;
	/* The caller says the request changes nothing (request{changes_nothing = true}): a
	 * POST that only reads, such as a login. A dry run lets it through. */
	bool changes_nothing;
};

struct ks_lua_fake_kube {
	const char *verb; /* "get" (kube.fetch), "list" (kube.fetch_list: body holds the
			     labels wanted), "apply", "create", "patch", "delete" */
	const struct ks_kube_res *res;
	const char *ns, *name;	       /* ns NULL: cluster scope; name NULL for create */
	const char *sub;	       /* subresource, or NULL */
	const char *patch_type;	       /* patch: "merge", "json" or "strategic" */
	const cJSON *body;	       /* apply, create: the object; patch: the patch; else NULL */
	bool force;		       /* apply */
	const char *uid, *propagation; /* delete; each may be NULL */
};

/*
 * An answer, owned by the reply (ks_lua_fake_reply_deinit). status 0: no response, and
 * reason and message say why. Otherwise the HTTP status with, for http, the response
 * headers ("Name: value\r\n" lines; may be NULL) and body; for kube, json (the object),
 * or for a status outside 2xx, reason and message of the Kubernetes Status.
 */
struct ks_lua_fake_reply {
	long status;
	char *reason, *message;
	char *headers;
	char *body;
	size_t body_len;
	cJSON *json;
};

/* Embed it in the owner's struct (KS_CONTAINER_OF finds the owner); any member may be NULL. */
struct ks_lua_fake {
	/* Answer req into *out (zeroed) and return true, or return false to send it. */
	bool (*http)(struct ks_lua_fake *f, const struct ks_lua_fake_http *req,
		     struct ks_lua_fake_reply *out);
	/* Answer call into *out (zeroed) and return true, or return false to send it (then
	 * the host needs a Kubernetes connection). */
	bool (*kube)(struct ks_lua_fake *f, const struct ks_lua_fake_kube *call,
		     struct ks_lua_fake_reply *out);
	/* ctx.event(type, reason, message) on obj, instead of the host's Events. */
	void (*event)(struct ks_lua_fake *f, const cJSON *obj, const char *type, const char *reason,
		      const char *message);
};

/* Free what r holds and zero it. */
void ks_lua_fake_reply_deinit(struct ks_lua_fake_reply *r);
/* Fill r as a failure without a response: status 0, reason, and the message. */
void ks_lua_fake_reply_fail(struct ks_lua_fake_reply *r, const char *reason, const char *fmt, ...)
	KS_PRINTF(3, 4);

/*
 * Pushes the results of a deferred call on the task's thread co; returns their number.
 */
typedef int (*ks_lua_push_cb)(lua_State *co, void *data);

/*
 * Yield the running task of L (the caller has checked ks_lua_check_yieldable()); from a
 * zero-delay timer, push(co, data) pushes the results and the task resumes with them.
 * drop(data) (may be NULL) runs once: after push, or instead of it when the task is
 * cancelled first. Use as `return ks_lua_defer(L, push, drop, data);`.
 */
int ks_lua_defer(lua_State *L, ks_lua_push_cb push, void (*drop)(void *data), void *data);
