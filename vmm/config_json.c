#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "vmm/config_json.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOK(j, i) (&((const jsmntok_t *)(j)->tok)[i])

/* ---- syntax check: jsmn tokenizes, this walks the text again against the JSON grammar -- */

struct scan {
	struct json *j;
	size_t pos; /* text position; on failure, where it was detected */
	int i;	    /* next token */
};

static int syntax_error(struct json *j, size_t pos, const char *why)
{
	unsigned line = 1;
	for (size_t i = 0; i < pos && i < j->len; i++)
		line += j->text[i] == '\n';
	if (j->err && j->errlen)
		snprintf(j->err, j->errlen, "line %u: invalid JSON%s", line, why);
	return -EINVAL;
}

static char peek(struct scan *s)
{
	const char *t = s->j->text;
	while (s->pos < s->j->len &&
	       (t[s->pos] == ' ' || t[s->pos] == '\t' || t[s->pos] == '\n' || t[s->pos] == '\r'))
		s->pos++;
	return s->pos < s->j->len ? t[s->pos] : '\0';
}

static long hex4(const char *s, const char *end)
{
	long v = 0;
	if (end - s < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Decodes the escape at *sp (a backslash) into a code point and moves *sp past it; -1 for a
 * malformed escape or an unpaired UTF-16 surrogate. */
static long unescape(const char **sp, const char *end)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *s = *sp + 1;
	if (s >= end)
		return -1;
	char c = *s++;
	const char *p = c ? strchr(from, c) : NULL;
	if (p) {
		*sp = s;
		return (unsigned char)to[p - from];
	}
	long cp = c == 'u' ? hex4(s, end) : -1;
	if (cp < 0 || (cp >= 0xdc00 && cp <= 0xdfff))
		return -1;
	s += 4;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		long lo = end - s >= 6 && s[0] == '\\' && s[1] == 'u' ? hex4(s + 2, end) : -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return -1;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		s += 6;
	}
	*sp = s;
	return cp;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates),
 * or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		lo = c == 0xe0 ? 0xa0 : lo;
		hi = c == 0xed ? 0x9f : hi;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		lo = c == 0xf0 ? 0x90 : lo;
		hi = c == 0xf4 ? 0x8f : hi;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* A string token at the text position; a value has size 0, a key's size (1) is checked
 * after its value. */
static int check_string(struct scan *s, bool key)
{
	struct json *j = s->j;
	const jsmntok_t *t = TOK(j, s->i);
	if (t->type != JSMN_STRING || t->start != (int)s->pos + 1 || (!key && t->size != 0) ||
	    t->end < t->start || (size_t)t->end >= j->len)
		return -1;
	const char *p = j->text + t->start, *end = j->text + t->end;
	while (p < end) {
		unsigned char c = *p;
		size_t n = c < 0x80 ? 1 : utf8_seq((const unsigned char *)p, end - p);
		if (c < 0x20 || n == 0 || (c == '\\' && unescape(&p, end) < 0)) {
			s->pos = p - j->text;
			return -1;
		}
		p += c == '\\' ? 0 : n;
	}
	s->pos = t->end + 1;
	j->next[s->i] = s->i + 1;
	s->i++;
	return 0;
}

static size_t digits(const char *s, size_t i, size_t n)
{
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/* true, false, null or a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_primitive(const char *s, size_t n)
{
	if ((n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)) ||
	    (n == 4 && !memcmp(s, "null", 4)))
		return true;
	size_t i = n && s[0] == '-', d = i;
	i = i < n && s[i] == '0' ? i + 1 : digits(s, i, n);
	if (i == d)
		return false;
	if (i < n && s[i] == '.') {
		d = ++i;
		if ((i = digits(s, i, n)) == d)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i += i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-') ? 2 : 1;
		d = i;
		if ((i = digits(s, i, n)) == d)
			return false;
	}
	return i == n;
}

/* jsmn's closing-bracket walk costs the nesting depth, so deep documents would take
 * quadratic time: bound the depth before tokenizing. Returns the offending position or -1. */
static long too_deep(const char *t, size_t len)
{
	bool in_str = false;
	int depth = 0;
	for (size_t i = 0; i < len; i++) {
		if (in_str && t[i] == '\\')
			i++;
		else if (t[i] == '"')
			in_str = !in_str;
		else if (!in_str && (t[i] == '{' || t[i] == '[') && ++depth > JSON_MAX_DEPTH)
			return (long)i;
		else if (!in_str && (t[i] == '}' || t[i] == ']') && depth > 0)
			depth--;
	}
	return -1;
}

static int check_value(struct scan *s, int depth);

/* The members or elements of the container token t, after its opening bracket. */
static int check_container(struct scan *s, const jsmntok_t *t, int depth)
{
	bool obj = t->type == JSMN_OBJECT;
	char close = obj ? '}' : ']';
	int n = 0;
	bool more = peek(s) != close;
	while (more) {
		int key = s->i;
		if (obj && (peek(s) != '"' || s->i >= s->j->ntok || check_string(s, true) < 0))
			return -1;
		if (obj && peek(s) != ':')
			return -1;
		s->pos += obj;
		int rc = check_value(s, depth);
		if (rc < 0)
			return rc;
		if (obj && TOK(s->j, key)->size != 1)
			return -1;
		n++;
		more = peek(s) == ',';
		s->pos += more;
	}
	if (peek(s) != close || t->size != n || t->end != (int)s->pos + 1)
		return -1;
	s->pos++;
	return 0;
}

static int check_value(struct scan *s, int depth)
{
	struct json *j = s->j;
	char c = peek(s);
	if (s->i >= j->ntok || s->pos >= j->len)
		return -1;
	const jsmntok_t *t = TOK(j, s->i);
	if (t->end < t->start || (size_t)t->end > j->len)
		return -1;
	if (c == '"')
		return check_string(s, false);
	int self = s->i++, rc = -1;
	if (c == '{' || c == '[') {
		if (depth >= JSON_MAX_DEPTH)
			return -1;
		if (t->start == (int)s->pos && t->type == (c == '{' ? JSMN_OBJECT : JSMN_ARRAY)) {
			s->pos++;
			rc = check_container(s, t, depth + 1);
		}
	} else if (t->type == JSMN_PRIMITIVE && t->start == (int)s->pos && t->size == 0 &&
		   is_primitive(j->text + t->start, t->end - t->start)) {
		s->pos = t->end;
		rc = 0;
	}
	j->next[self] = s->i;
	return rc;
}

int json_open(struct json *j, const char *text, size_t len, char *err, size_t errlen)
{
	*j = (struct json){.text = text ? text : "", .len = text ? len : 0};
	j->err = err;
	j->errlen = errlen;
	const char *nul = memchr(j->text, '\0', j->len);
	if (nul || j->len >= INT_MAX)
		return syntax_error(j, nul ? (size_t)(nul - j->text) : 0, "");
	long deep = too_deep(j->text, j->len);
	if (deep >= 0)
		return syntax_error(j, deep, " (nested too deeply)");
	jsmn_parser p;
	jsmn_init(&p);
	int n = jsmn_parse(&p, j->text, j->len, NULL, 0);
	if (n <= 0)
		return syntax_error(j, n < 0 ? p.pos : j->len, "");
	j->tok = calloc(n, sizeof(jsmntok_t));
	j->next = calloc(n, sizeof(int));
	if (!j->tok || !j->next)
		return json_error(j, "out of memory");
	jsmn_init(&p);
	j->ntok = jsmn_parse(&p, j->text, j->len, j->tok, n);
	if (j->ntok < 0)
		return syntax_error(j, p.pos, "");
	struct scan s = {.j = j};
	int rc = check_value(&s, 0);
	if (rc < 0 || peek(&s) != '\0' || s.i != j->ntok)
		return syntax_error(j, s.pos, "");
	return 0;
}

void json_close(struct json *j)
{
	free(j->tok);
	free(j->next);
	j->tok = NULL;
	j->next = NULL;
	j->ntok = 0;
}

/* ---- errors and the key path ---------------------------------------------------------- */

static int verror(struct json *j, const char *fmt, va_list ap)
{
	if (!j->err || !j->errlen)
		return -EINVAL;
	int n = snprintf(j->err, j->errlen, "%s: ", j->pathlen ? j->path : "config");
	if (n >= 0 && (size_t)n < j->errlen)
		vsnprintf(j->err + n, j->errlen - n, fmt, ap);
	return -EINVAL;
}

int json_error(struct json *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = verror(j, fmt, ap);
	va_end(ap);
	return rc;
}

int json_member_error(struct json *j, const char *name, const char *fmt, ...)
{
	size_t saved = json_push_key(j, name);
	va_list ap;
	va_start(ap, fmt);
	int rc = verror(j, fmt, ap);
	va_end(ap);
	json_pop(j, saved);
	return rc;
}

/* Accounts for n bytes snprintf()ed at path[saved], which may have been cut short. */
static size_t path_grown(struct json *j, size_t saved, int n)
{
	size_t room = sizeof(j->path) - saved;
	if (n > 0)
		j->pathlen = saved + ((size_t)n < room ? (size_t)n : room - 1);
	return saved;
}

size_t json_push_key(struct json *j, const char *key)
{
	size_t saved = j->pathlen;
	if (!key)
		return saved;
	return path_grown(
	    j, saved,
	    snprintf(j->path + saved, sizeof(j->path) - saved, "%s%s", saved ? "." : "", key));
}

size_t json_push_index(struct json *j, unsigned idx)
{
	size_t saved = j->pathlen;
	return path_grown(j, saved,
			  snprintf(j->path + saved, sizeof(j->path) - saved, "[%u]", idx));
}

void json_pop(struct json *j, size_t saved)
{
	j->pathlen = saved;
	j->path[saved] = '\0';
}

const char *json_raw(const struct json *j, int tok, char *buf, size_t size)
{
	const jsmntok_t *t = TOK(j, tok);
	size_t n = t->end - t->start;
	if (n < size) {
		memcpy(buf, j->text + t->start, n);
		buf[n] = '\0';
	} else {
		snprintf(buf, size, "%.*s...", (int)size - 4, j->text + t->start);
	}
	return buf;
}

/* ---- typed getters --------------------------------------------------------------------- */

static size_t utf8_put(char *out, long cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	size_t n = cp < 0x10000 ? 3 : 4;
	out[0] = (char)(n == 3 ? 0xe0 | cp >> 12 : 0xf0 | cp >> 18);
	for (size_t i = 1; i < n; i++)
		out[i] = (char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f));
	return n;
}

/* Decodes string token tok into buf (size > 0, NUL-terminated). Returns the length,
 * -ERANGE when it does not fit, -EINVAL for \u0000 (or a bad escape). */
static long decode(const struct json *j, int tok, char *buf, size_t size)
{
	const jsmntok_t *t = TOK(j, tok);
	const char *s = j->text + t->start, *end = j->text + t->end;
	size_t n = 0;
	while (s < end) {
		char out[4];
		size_t k = 1;
		if (*s != '\\') {
			out[0] = *s++;
		} else {
			long cp = unescape(&s, end);
			if (cp <= 0)
				return -EINVAL;
			k = utf8_put(out, cp);
		}
		if (k >= size - n)
			return -ERANGE;
		memcpy(buf + n, out, k);
		n += k;
	}
	buf[n] = '\0';
	return (long)n;
}

static bool is_null(const struct json *j, int tok)
{
	return TOK(j, tok)->type == JSMN_PRIMITIVE && j->text[TOK(j, tok)->start] == 'n';
}

int json_members(struct json *j, int obj, const char *const *keys, int nkeys, int *val)
{
	for (int k = 0; k < nkeys; k++)
		val[k] = JSON_ABSENT;
	if (obj < 0 || TOK(j, obj)->type != JSMN_OBJECT)
		return json_error(j, "expected an object");
	int key = obj + 1;
	for (int m = 0; m < TOK(j, obj)->size; m++, key = j->next[key + 1]) {
		char name[64], raw[72];
		int k = decode(j, key, name, sizeof(name)) >= 0 ? 0 : nkeys;
		while (k < nkeys && strcmp(name, keys[k]))
			k++;
		if (k == nkeys || val[k] != JSON_ABSENT)
			return json_member_error(j, json_raw(j, key, raw, sizeof(raw)),
						 k == nkeys ? "unknown key" : "duplicate key");
		val[k] = is_null(j, key + 1) ? JSON_NULL : key + 1;
	}
	return 0;
}

int json_array(struct json *j, int arr, int *elems, unsigned max, unsigned *n)
{
	*n = 0;
	if (arr < 0)
		return 0;
	const jsmntok_t *t = TOK(j, arr);
	if (t->type != JSMN_ARRAY)
		return json_error(j, "expected an array");
	if ((unsigned)t->size > max)
		return json_error(j, "more than %u entries", max);
	for (int e = arr + 1; *n < (unsigned)t->size; e = j->next[e])
		elems[(*n)++] = e;
	return 0;
}

bool json_is_empty_array(const struct json *j, int tok)
{
	return tok >= 0 && TOK(j, tok)->type == JSMN_ARRAY && TOK(j, tok)->size == 0;
}

/* Absent or null values: 1 if tok holds a value to read, else 0 or the error. */
static int have_value(struct json *j, int tok, unsigned flags, const char *type)
{
	if (tok >= 0)
		return 1;
	if (!(flags & JSON_REQUIRED))
		return 0;
	if (tok == JSON_NULL)
		return json_error(j, "expected %s", type);
	return json_error(j, "missing required key");
}

static int get_string(struct json *j, int tok, unsigned flags, char *buf, size_t size)
{
	if (TOK(j, tok)->type != JSMN_STRING)
		return json_error(j, "expected a string");
	long n = decode(j, tok, buf, size);
	if (n == -ERANGE)
		return json_error(j, "longer than %zu bytes", size - 1);
	if (n < 0)
		return json_error(j, "NUL character not allowed");
	if (n == 0 && (flags & JSON_NONEMPTY))
		return json_error(j, "must not be empty");
	return 0;
}

int json_str(struct json *j, int tok, const char *name, unsigned flags, char **out)
{
	size_t saved = json_push_key(j, name);
	int rc = have_value(j, tok, flags, "a string");
	if (rc > 0) {
		/* Decoding never grows a string, so the raw length bounds the buffer. */
		size_t raw = TOK(j, tok)->end - TOK(j, tok)->start;
		size_t size = (raw < JSON_STR_MAX ? raw : JSON_STR_MAX) + 1;
		char *buf = malloc(size);
		rc = buf ? get_string(j, tok, flags, buf, size) : json_error(j, "out of memory");
		if (rc == 0) {
			free(*out);
			*out = buf;
		} else {
			free(buf);
		}
	}
	json_pop(j, saved);
	return rc;
}

int json_strbuf(struct json *j, int tok, const char *name, unsigned flags, char *buf, size_t size)
{
	size_t saved = json_push_key(j, name);
	int rc = have_value(j, tok, flags, "a string");
	if (rc > 0)
		rc = get_string(j, tok, flags, buf, size);
	json_pop(j, saved);
	return rc;
}

int json_bool(struct json *j, int tok, const char *name, unsigned flags, bool *out)
{
	size_t saved = json_push_key(j, name);
	int rc = have_value(j, tok, flags, "a boolean");
	if (rc > 0) {
		char c = j->text[TOK(j, tok)->start];
		rc = 0;
		if (TOK(j, tok)->type != JSMN_PRIMITIVE || (c != 't' && c != 'f'))
			rc = json_error(j, "expected a boolean");
		else
			*out = c == 't';
	}
	json_pop(j, saved);
	return rc;
}

static int get_uint(struct json *j, int tok, uint64_t min, uint64_t max, uint64_t *out)
{
	const jsmntok_t *t = TOK(j, tok);
	const char *s = j->text + t->start;
	size_t n = t->end - t->start;
	char raw[32];
	/* The syntax check leaves only plain digits without leading zeros to test for. */
	if (t->type != JSMN_PRIMITIVE || n == 0 || digits(s, 0, n) != n)
		return json_error(j, "expected an unsigned integer");
	uint64_t v = 0;
	bool over = false;
	for (size_t i = 0; i < n && !over; i++) {
		unsigned d = s[i] - '0';
		over = v > (UINT64_MAX - d) / 10;
		v = over ? v : v * 10 + d;
	}
	if (over || v < min || v > max)
		return json_error(j, "%s out of range %" PRIu64 "..%" PRIu64,
				  json_raw(j, tok, raw, sizeof(raw)), min, max);
	*out = v;
	return 0;
}

int json_uint(struct json *j, int tok, const char *name, unsigned flags, uint64_t min, uint64_t max,
	      uint64_t *out)
{
	size_t saved = json_push_key(j, name);
	int rc = have_value(j, tok, flags, "an unsigned integer");
	if (rc > 0)
		rc = get_uint(j, tok, min, max, out);
	json_pop(j, saved);
	return rc;
}

int json_enum(struct json *j, int tok, const char *name, unsigned flags, const char *const *values,
	      int nvalues, bool icase, int *out)
{
	size_t saved = json_push_key(j, name);
	int rc = have_value(j, tok, flags, "a string");
	if (rc > 0) {
		char buf[32], raw[72];
		bool str = TOK(j, tok)->type == JSMN_STRING;
		int k = str && decode(j, tok, buf, sizeof(buf)) >= 0 ? 0 : nvalues;
		while (k < nvalues && (icase ? strcasecmp : strcmp)(buf, values[k]))
			k++;
		rc = 0;
		if (!str)
			rc = json_error(j, "expected a string");
		else if (k == nvalues)
			rc = json_error(j, "%s not supported by kiln",
					json_raw(j, tok, raw, sizeof(raw)));
		else
			*out = k;
	}
	json_pop(j, saved);
	return rc;
}
