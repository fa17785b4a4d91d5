#pragma once
/*
 * event_object.h: a core/v1 Event as the recorder (event.h) sends it: built from the
 * object it is about, named, timestamped; pure functions but for the clock.
 */
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cJSON.h>

/* RFC 3339 in UTC, seconds: "2006-01-02T15:04:05Z". */
void ks_event_timestamp(char out[32], time_t t);
/* Set o's key to the string val (replacing it). */
void ks_event_set_str(cJSON *o, const char *key, const char *val);
/* Name ev "<obj>.<16 hex>": obj made safe for a DNS subdomain and cut to fit, the hex a
 * hash of the time, seq and salt (unique per recorder and call). */
void ks_event_name(cJSON *ev, const char *obj, uint64_t seq, const void *salt);
/* A new Event (count 1, both timestamps now) of type, reason and msg about obj, from
 * component on host, named with ks_event_name(). Never NULL; the caller frees. */
cJSON *ks_event_object(const cJSON *obj, const char *type, const char *reason, const char *msg,
		       const char *component, const char *host, uint64_t seq, const void *salt);
/* The uid of obj, or for an object not yet created, what names it. The caller frees. */
char *ks_event_object_key(const cJSON *obj);
/* Cut the message s to n bytes; one cut inside a UTF-8 character loses that character. */
void ks_event_cut(char *s, size_t n);
