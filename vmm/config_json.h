/* A small typed layer over jsmn for the config parser: the document is tokenized and then
 * checked against the full JSON grammar (jsmn alone accepts e.g. missing commas), so the
 * getters below can walk tokens without further syntax checks. Errors are one line,
 * "<key path>: <what is wrong>", where the key path is kept in struct json. Values are
 * token indices; JSON_ABSENT and JSON_NULL stand for a missing key and a JSON null. */
#ifndef KILN_CONFIG_JSON_H
#define KILN_CONFIG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_ABSENT (-1)
#define JSON_NULL (-2)
#define JSON_MAX_DEPTH 16 /* the config schema nests 5 deep */
#define JSON_STR_MAX 4095 /* PATH_MAX - 1: the longest string value accepted */
#define JSON_PATH_MAX 192 /* room for the longest key path of the schema */

/* Getter flags. */
#define JSON_REQUIRED 1U
#define JSON_NONEMPTY 2U

struct json {
	const char *text;
	size_t len;
	void *tok; /* jsmntok_t[ntok]; private to config_json.c so jsmn stays there */
	int *next; /* next[i]: the token after the subtree of token i */
	int ntok;
	char path[JSON_PATH_MAX];
	size_t pathlen;
	char *err;
	size_t errlen;
};

/* Tokenizes and syntax-checks text[0..len). Returns 0 with the root token at index 0, or
 * -EINVAL with "line N: invalid JSON" in err. Either way json_close() releases j. */
int json_open(struct json *j, const char *text, size_t len, char *err, size_t errlen);
void json_close(struct json *j);

/* Writes "<current path>: <message>" to err; returns -EINVAL. The member variant puts
 * `name` on the path first. */
int json_error(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int json_member_error(struct json *j, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Path bookkeeping: push returns the length to hand back to json_pop(). */
size_t json_push_key(struct json *j, const char *key);
size_t json_push_index(struct json *j, unsigned idx);
void json_pop(struct json *j, size_t saved);

/* Copies token text as written (at most size-1 bytes, "..." if cut) for error messages;
 * syntax checking guarantees it holds no control characters. */
const char *json_raw(const struct json *j, int tok, char *buf, size_t size);

/* With the path at an object: val[k] = value token of keys[k], JSON_ABSENT or JSON_NULL.
 * Non-object, unknown or duplicate keys are errors. */
int json_members(struct json *j, int obj, const char *const *keys, int nkeys, int *val);

/* With the path at an array: elems[0..*n) = element tokens. More than max is an error;
 * JSON_ABSENT/JSON_NULL give *n = 0. */
int json_array(struct json *j, int arr, int *elems, unsigned max, unsigned *n);

/* true if tok is the empty array [] (tok >= 0). */
bool json_is_empty_array(const struct json *j, int tok);

/* Typed getters for member `name` (pushed onto the path for error messages). An absent or
 * null value leaves *out untouched unless JSON_REQUIRED is set, which makes it an error. */
int json_str(struct json *j, int tok, const char *name, unsigned flags, char **out);
int json_strbuf(struct json *j, int tok, const char *name, unsigned flags, char *buf, size_t size);
int json_bool(struct json *j, int tok, const char *name, unsigned flags, bool *out);
int json_uint(struct json *j, int tok, const char *name, unsigned flags, uint64_t min, uint64_t max,
	      uint64_t *out);
/* *out = index of the value in values[] (exact match, or ASCII case-insensitive if icase);
 * any other string is "<path>: <value> not supported by kiln". */
int json_enum(struct json *j, int tok, const char *name, unsigned flags, const char *const *values,
	      int nvalues, bool icase, int *out);

#endif
