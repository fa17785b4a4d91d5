#pragma once
/*
 * scrape.h: the client side of /metrics: fetching a running host's metrics and reading
 * the text exposition format (version 0.0.4), for the commands that ask a host how it
 * is doing (`kupenstack plugin status`).
 */
#include <stddef.h>

#include <cJSON.h>

/*
 * The samples of text[0..len): an array of {"name": "...", "labels": {"k": "v"},
 * "value": n}, in order. Comments, blank and malformed lines are skipped. Never NULL;
 * the caller frees it.
 */
cJSON *ks_scrape_parse(const char *text, size_t len);

/*
 * GET http://addr/metrics (addr "host:port"), waiting for the answer on a loop of its
 * own. Returns the body (the caller frees it), or NULL with *err (free it) saying why.
 */
char *ks_scrape_get(const char *addr, size_t *len, char **err);
