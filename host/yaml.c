/*
 * yaml.c: YAML text to cJSON over libyaml's event parser. The rules are in yaml.h; the
 * choices it leaves open are made here:
 *  - Numbers are doubles (all cJSON holds): integers past 2^53 lose their low digits, as
 *    in any float64 JSON client. A numeral too large for a double (1e400) stays a string,
 *    as go-yaml keeps it; under !!int or !!float it is an error.
 *  - .inf, -.inf and .nan, plain or !!float, are errors: JSON cannot hold them (kubectl
 *    fails on them too, encoding/json refusing +Inf). Quoted, they are strings.
 *  - YAML 1.1 forms are strings (yes, on, 1_000), 0777 is 777, "<<" is an ordinary key.
 *  - A mapping key is the scalar's text as written ("0x10: a" gives "0x10"); an alias as
 *    a key gives the anchored scalar's JSON text. Duplicate keys are errors, as in
 *    Kubernetes' strict decoding.
 *  - An empty document (nothing after "---" but comments) is skipped; "--- ~" is null.
 *  - A "\0" escape in a scalar is an error: cJSON strings end at NUL, and a shortened
 *    string would change meaning.
 *  - Per stream, at most MAX_NODES values (parsed or copied by aliases), MAX_ALIAS_BYTES
 *    of text copied by aliases, and MAX_DEPTH nested collections.
 */
#include "yaml.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* libyaml's: host/ is on the quote path only (-iquote), so <yaml.h> is the system's. */
#include <yaml.h>

#include "json.h"
#include "ks.h"
#include "log.h"
#include "map.h"

#define MAX_NODES 1000000u
#define MAX_ALIAS_BYTES (64u << 20)
#define MAX_DEPTH 512
/* Mappings up to this many keys look for duplicates by a linear scan, then by a map. */
#define SMALL_MAP 16

struct parser {
	yaml_parser_t yp;
	const char *text;
	size_t len;
	struct ks_map *anchors; /* name -> cJSON * in this document's tree or in keep */
	cJSON *keep;		/* anchored mapping keys, which have no place in the tree */
	size_t nodes;
	size_t alias_bytes;
	char *err;
};

enum kind { K_STR, K_NULL, K_BOOL, K_INT, K_FLOAT, K_NONFINITE };

static cJSON *must(cJSON *item)
{
	if (!item)
		ks_panic(__FILE__, __LINE__, "cJSON: out of memory");
	return item;
}

static void must_add(cJSON *obj, const char *key, cJSON *item)
{
	bool ok = key ? cJSON_AddItemToObject(obj, key, item) : cJSON_AddItemToArray(obj, item);

	if (!ok)
		ks_panic(__FILE__, __LINE__, "cJSON: out of memory");
}

/* Record the first error, at a 0-based libyaml mark. Returns -EINVAL. */
KS_PRINTF(3, 4) static int fail(struct parser *p, const yaml_mark_t *m, const char *fmt, ...)
{
	va_list ap;
	char *what;

	if (p->err)
		return -EINVAL;
	va_start(ap, fmt);
	what = ks_xvasprintf(fmt, ap);
	va_end(ap);
	p->err = ks_xasprintf("line %zu column %zu: %s", m->line + 1, m->column + 1, what);
	free(what);
	return -EINVAL;
}

/* The mark of byte offset off in the text (libyaml's reader errors give only that). */
static yaml_mark_t mark_at(const struct parser *p, size_t off)
{
	yaml_mark_t m = { .index = off };

	for (size_t i = 0; i < off && i < p->len; i++) {
		if (p->text[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if (((unsigned char)p->text[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return m;
}

/* The next event into ev, which the caller deletes. Returns 0, or -EINVAL. */
static int next(struct parser *p, yaml_event_t *ev)
{
	yaml_mark_t m;

	if (yaml_parser_parse(&p->yp, ev))
		return 0;
	if (p->yp.error == YAML_MEMORY_ERROR)
		ks_panic(__FILE__, __LINE__, "libyaml: out of memory");
	m = p->yp.problem_mark;
	if (p->yp.error == YAML_READER_ERROR)
		m = mark_at(p, p->yp.problem_offset);
	return fail(p, &m, "%s", p->yp.problem ? p->yp.problem : "invalid YAML");
}

/* Count one more value against MAX_NODES. Returns 0, or -EINVAL. */
static int count(struct parser *p, const yaml_mark_t *m)
{
	if (++p->nodes <= MAX_NODES)
		return 0;
	return fail(p, m, "more than %u values (aliases expand to too much)", MAX_NODES);
}

static int too_deep(struct parser *p, const yaml_mark_t *m)
{
	return fail(p, m, "collections nested deeper than %d levels", MAX_DEPTH);
}

/* [-+]? ( [0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+ ), the core schema's ints, into *num. */
static bool is_int(const char *s, double *num)
{
	const char *d = s + (*s == '+' || *s == '-');
	double v = 0;

	if (d[0] == '0' && d[1] == 'o' && d[2] && !d[2 + strspn(d + 2, "01234567")]) {
		for (d += 2; *d; d++)
			v = v * 8 + (*d - '0');
		*num = *s == '-' ? -v : v;
	} else if ((d[0] == '0' && d[1] == 'x' && d[2] &&
		    !d[2 + strspn(d + 2, "0123456789abcdefABCDEF")]) ||
		   (*d && !d[strspn(d, "0123456789")])) {
		*num = strtod(s, NULL); /* correctly rounded, hexadecimal too */
	} else {
		return false;
	}
	if (*num == 0)
		*num = 0; /* -0 is the integer 0 */
	return true;
}

/*
 * [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )?, the core schema's
 * floats, into *num: strtod's decimal form exactly, once the other forms it takes
 * (hexadecimal, inf, nan, leading space) are ruled out by their characters.
 */
static bool is_float(const char *s, double *num)
{
	char *end;

	if (!*s || s[strspn(s, "0123456789+-.eE")])
		return false;
	*num = strtod(s, &end);
	return !*end;
}

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++) {
		if (strcmp(s, *words) == 0)
			return true;
	}
	return false;
}

/* The YAML 1.2 core schema type of a plain scalar, and its value in *num. */
static enum kind classify(const char *s, double *num)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	static const char *const infs[] = { ".inf", ".Inf", ".INF", NULL };
	static const char *const nans[] = { ".nan", ".NaN", ".NAN", NULL };

	*num = 0;
	if (is_one_of(s, nulls))
		return K_NULL;
	if (is_one_of(s, trues) || is_one_of(s, falses)) {
		*num = is_one_of(s, trues);
		return K_BOOL;
	}
	if (is_one_of(s + (*s == '+' || *s == '-'), infs) || is_one_of(s, nans))
		return K_NONFINITE;
	if (is_int(s, num))
		return isfinite(*num) ? K_INT : K_STR;
	if (is_float(s, num))
		return isfinite(*num) ? K_FLOAT : K_STR;
	return K_STR;
}

/* The kind an explicit tag asks for, checked against the text. Returns 0, or -EINVAL. */
static int tagged_kind(struct parser *p, const yaml_event_t *ev, enum kind *kind, double *num)
{
	const char *tag = (const char *)ev->data.scalar.tag;
	const char *s = (const char *)ev->data.scalar.value;
	enum kind k = classify(s, num);

	if (strcmp(tag, YAML_NULL_TAG) == 0 && k == K_NULL)
		*kind = K_NULL;
	else if (strcmp(tag, YAML_BOOL_TAG) == 0 && k == K_BOOL)
		*kind = K_BOOL;
	else if (strcmp(tag, YAML_INT_TAG) == 0 && k == K_INT)
		*kind = K_INT;
	else if (strcmp(tag, YAML_FLOAT_TAG) == 0 && (k == K_INT || k == K_FLOAT))
		*kind = K_FLOAT;
	else if (strcmp(tag, YAML_FLOAT_TAG) == 0 && k == K_NONFINITE)
		*kind = K_NONFINITE;
	else if (strcmp(tag, YAML_NULL_TAG) && strcmp(tag, YAML_BOOL_TAG) &&
		 strcmp(tag, YAML_INT_TAG) && strcmp(tag, YAML_FLOAT_TAG))
		*kind = K_STR; /* !!str, !, !!timestamp, !!binary, local tags */
	else
		return fail(p, &ev->start_mark, "%s is not a valid !!%s", ks_logq(s),
			    tag + strlen("tag:yaml.org,2002:"));
	return 0;
}

static bool has_nul(struct parser *p, const yaml_event_t *ev)
{
	if (strlen((const char *)ev->data.scalar.value) == ev->data.scalar.length)
		return false;
	fail(p, &ev->start_mark, "a NUL character in a scalar is not supported");
	return true;
}

static cJSON *scalar_node(struct parser *p, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	enum kind kind = K_STR;
	double num = 0;

	if (count(p, &ev->start_mark))
		return NULL;
	if (has_nul(p, ev))
		return NULL;
	if (ev->data.scalar.tag) {
		if (tagged_kind(p, ev, &kind, &num))
			return NULL;
	} else if (ev->data.scalar.plain_implicit) {
		kind = classify(s, &num);
	}
	switch (kind) {
	case K_NULL:
		return must(cJSON_CreateNull());
	case K_BOOL:
		return must(cJSON_CreateBool(num != 0));
	case K_INT:
	case K_FLOAT:
		return must(cJSON_CreateNumber(num));
	case K_NONFINITE:
		fail(p, &ev->start_mark, "%s cannot be represented in JSON", s);
		return NULL;
	default:
		return must(cJSON_CreateString(s));
	}
}

/* A deep copy of src for an alias at mark m, the copy's root at depth. */
static cJSON *copy(struct parser *p, const cJSON *src, int depth, const yaml_mark_t *m)
{
	cJSON *dst, *c;

	if (count(p, m))
		return NULL;
	if (cJSON_IsString(src))
		p->alias_bytes += strlen(src->valuestring);
	if (src->string)
		p->alias_bytes += strlen(src->string);
	if (p->alias_bytes > MAX_ALIAS_BYTES) {
		fail(p, m, "aliases copy more than %u bytes", MAX_ALIAS_BYTES);
		return NULL;
	}
	if (!cJSON_IsArray(src) && !cJSON_IsObject(src))
		return must(cJSON_Duplicate(src, false));
	if (depth >= MAX_DEPTH) {
		too_deep(p, m);
		return NULL;
	}
	dst = must(cJSON_IsArray(src) ? cJSON_CreateArray() : cJSON_CreateObject());
	for (const cJSON *s = src->child; s; s = s->next) {
		c = copy(p, s, depth + 1, m);
		if (!c) {
			cJSON_Delete(dst);
			return NULL;
		}
		must_add(dst, cJSON_IsObject(src) ? s->string : NULL, c);
	}
	return dst;
}

static cJSON *alias_node(struct parser *p, const yaml_event_t *ev, int depth)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const cJSON *src = ks_map_get(p->anchors, name);

	if (!src) {
		fail(p, &ev->start_mark, "unknown anchor %s", ks_logq(name));
		return NULL;
	}
	return copy(p, src, depth, &ev->start_mark);
}

static cJSON *parse_node(struct parser *p, const yaml_event_t *ev, int depth);

/* The text of the mapping key that ev starts, which the caller frees; NULL on error. */
static char *map_key(struct parser *p, const yaml_event_t *ev)
{
	bool scalar = ev->type == YAML_SCALAR_EVENT;
	const char *anchor = scalar ? (const char *)ev->data.scalar.anchor : NULL;
	cJSON *node = NULL;
	char *key = NULL;

	if (scalar && !anchor)
		return has_nul(p, ev) ? NULL : ks_xstrdup((const char *)ev->data.scalar.value);
	if (scalar) {
		/* The key is text, but an alias to it gets the value the scalar resolves to. */
		node = scalar_node(p, ev);
		if (node) {
			must_add(p->keep, NULL, node);
			ks_map_put(p->anchors, anchor, node);
		}
		return node ? ks_xstrdup((const char *)ev->data.scalar.value) : NULL;
	}
	if (ev->type == YAML_ALIAS_EVENT)
		node = alias_node(p, ev, 0);
	if (cJSON_IsString(node))
		key = ks_xstrdup(node->valuestring);
	else if (node && !cJSON_IsArray(node) && !cJSON_IsObject(node))
		key = ks_json_print(node);
	else
		fail(p, &ev->start_mark, "mapping keys must be scalars");
	cJSON_Delete(node);
	return key;
}

/* Whether obj, holding n keys, already has key; remembers key in *seen past SMALL_MAP. */
static bool seen_key(const cJSON *obj, struct ks_map **seen, size_t n, const char *key)
{
	if (n < SMALL_MAP)
		return cJSON_GetObjectItemCaseSensitive(obj, key) != NULL;
	if (!*seen) {
		*seen = ks_map_new(n * 2);
		for (const cJSON *c = obj->child; c; c = c->next)
			ks_map_put(*seen, c->string, NULL);
	}
	if (ks_map_has(*seen, key))
		return true;
	ks_map_put(*seen, key, NULL);
	return false;
}

/* Parse one key: value pair, the key's event in kev, into obj. Returns 0, or -EINVAL. */
static int map_entry(struct parser *p, cJSON *obj, struct ks_map **seen, size_t n,
		     const yaml_event_t *kev, int depth)
{
	char *key = map_key(p, kev);
	yaml_event_t ev;
	cJSON *val;
	int rc = -EINVAL;

	if (!key)
		return -EINVAL;
	if (seen_key(obj, seen, n, key)) {
		rc = fail(p, &kev->start_mark, "duplicate key %s", ks_logq(key));
		goto out_free_key;
	}
	rc = next(p, &ev);
	if (rc)
		goto out_free_key;
	val = parse_node(p, &ev, depth + 1);
	yaml_event_delete(&ev);
	if (val)
		must_add(obj, key, val);
	rc = val ? 0 : -EINVAL;
out_free_key:
	free(key);
	return rc;
}

/* The items of a sequence or the pairs of a mapping, up to its end. NULL on error. */
static cJSON *parse_collection(struct parser *p, bool is_map, int depth)
{
	cJSON *c = must(is_map ? cJSON_CreateObject() : cJSON_CreateArray());
	struct ks_map *seen = NULL;
	yaml_event_t ev;
	cJSON *item;
	int rc;

	for (size_t n = 0; (rc = next(p, &ev)) == 0; n++) {
		if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (is_map) {
			rc = map_entry(p, c, &seen, n, &ev, depth);
		} else {
			item = parse_node(p, &ev, depth + 1);
			if (item)
				must_add(c, NULL, item);
			rc = item ? 0 : -EINVAL;
		}
		yaml_event_delete(&ev);
		if (rc)
			break;
	}
	ks_map_free(seen);
	if (rc) {
		cJSON_Delete(c);
		c = NULL;
	}
	return c;
}

/* The value that ev starts, at depth; NULL on error. The caller deletes ev. */
static cJSON *parse_node(struct parser *p, const yaml_event_t *ev, int depth)
{
	const yaml_char_t *anchor = NULL;
	cJSON *node = NULL;
	bool is_map;

	if (ev->type == YAML_SCALAR_EVENT) {
		anchor = ev->data.scalar.anchor;
		node = scalar_node(p, ev);
	} else if (ev->type == YAML_ALIAS_EVENT) {
		node = alias_node(p, ev, depth);
	} else if (depth >= MAX_DEPTH) {
		too_deep(p, &ev->start_mark);
	} else {
		ks_require(ev->type == YAML_SEQUENCE_START_EVENT ||
			   ev->type == YAML_MAPPING_START_EVENT);
		is_map = ev->type == YAML_MAPPING_START_EVENT;
		anchor = is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
		node = count(p, &ev->start_mark) ? NULL : parse_collection(p, is_map, depth);
	}
	if (node && anchor)
		ks_map_put(p->anchors, (const char *)anchor, node);
	return node;
}

/* A document with nothing in it: "---" then only comments, as helm template emits. */
static bool is_empty(const yaml_event_t *root)
{
	return root->type == YAML_SCALAR_EVENT && root->data.scalar.length == 0 &&
	       root->data.scalar.plain_implicit && !root->data.scalar.tag &&
	       !root->data.scalar.anchor;
}

/* Parse the document after its DOCUMENT-START into docs. Returns 0, or -EINVAL. */
static int parse_doc(struct parser *p, cJSON *docs, bool single)
{
	yaml_event_t ev;
	cJSON *root = NULL;
	int rc;

	rc = next(p, &ev);
	if (rc)
		return rc;
	if (is_empty(&ev))
		goto out_delete_ev;
	if (single && cJSON_GetArraySize(docs) > 0) {
		rc = fail(p, &ev.start_mark, "expected one document, found another");
		goto out_delete_ev;
	}
	root = parse_node(p, &ev, 0);
	if (!root)
		rc = -EINVAL;
	else
		must_add(docs, NULL, root);
out_delete_ev:
	yaml_event_delete(&ev);
	if (rc == 0)
		rc = next(p, &ev); /* DOCUMENT-END: libyaml checks it is there */
	if (rc == 0)
		yaml_event_delete(&ev);
	/* Aliases cannot refer to anchors of an earlier document. */
	ks_map_free(p->anchors);
	p->anchors = ks_map_new(0);
	cJSON_Delete(p->keep);
	p->keep = must(cJSON_CreateArray());
	return rc;
}

static int parse_stream(struct parser *p, cJSON *docs, bool single)
{
	yaml_event_t ev;
	yaml_event_type_t type;
	int rc;

	do {
		rc = next(p, &ev);
		if (rc)
			return rc;
		type = ev.type;
		if (type == YAML_DOCUMENT_START_EVENT)
			rc = parse_doc(p, docs, single);
		else if (type == YAML_STREAM_END_EVENT && single && !cJSON_GetArraySize(docs))
			rc = fail(p, &ev.start_mark, "no document in the text");
		yaml_event_delete(&ev);
	} while (rc == 0 && type != YAML_STREAM_END_EVENT);
	return rc;
}

static cJSON *parse_text(const char *text, size_t len, bool single, char **err)
{
	struct parser p = { .text = text ? text : "", .len = text ? len : 0 };
	cJSON *docs = must(cJSON_CreateArray());

	if (!yaml_parser_initialize(&p.yp))
		ks_panic(__FILE__, __LINE__, "libyaml: out of memory");
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)p.text, p.len);
	p.anchors = ks_map_new(0);
	p.keep = must(cJSON_CreateArray());
	if (parse_stream(&p, docs, single)) {
		ks_require(p.err);
		cJSON_Delete(docs);
		docs = NULL;
	}
	cJSON_Delete(p.keep);
	ks_map_free(p.anchors);
	yaml_parser_delete(&p.yp);
	if (err)
		*err = p.err;
	else
		free(p.err);
	return docs;
}

cJSON *ks_yaml_parse_all(const char *text, size_t len, char **err)
{
	return parse_text(text, len, false, err);
}

cJSON *ks_yaml_parse(const char *text, size_t len, char **err)
{
	cJSON *docs = parse_text(text, len, true, err);
	cJSON *doc;

	if (!docs)
		return NULL;
	doc = cJSON_DetachItemFromArray(docs, 0);
	cJSON_Delete(docs);
	return doc;
}
