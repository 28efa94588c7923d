/*
 * conf.c - configuration tables over libinih (see conf.h).
 *
 * This is the only file that includes ini.h. inih does the INI syntax;
 * this file feeds it lines through its own reader, which is how we know
 * the line number of every handler call (Debian's inih is built without
 * INI_HANDLER_LINENO), strips leading blanks (so indented keys are not
 * taken for continuation lines), and rejects lines longer than inih's
 * fixed 200-byte buffer instead of letting inih split them.
 */
#include "sitepulse/conf.h"
#include "sitepulse/error.h"
#include "sitepulse/ids.h"
#include "sitepulse/log.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INIH_LINE_MAX 198  /* inih's buffer is 200 bytes: text + '\n' + NUL */
#define RAW_LINE_MAX 65536 /* longer physical lines are skipped whole */
#define MAX_PARTS 2

/* ---------------------------------------------------------------- errors */

void sp_conf_errors_add(struct sp_conf_errors *e, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	char **p;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p = realloc(e->lines, (e->count + 1) * sizeof(*p));
	if (p == NULL)
		return; /* out of memory while reporting: the count still says "failed" via rc */
	e->lines = p;
	e->lines[e->count] = strdup(line);
	if (e->lines[e->count] != NULL)
		e->count++;
}

void sp_conf_errors_print(const struct sp_conf_errors *e, FILE *out)
{
	for (size_t i = 0; i < e->count; i++)
		fprintf(out, "%s\n", e->lines[i]);
}

void sp_conf_errors_free(struct sp_conf_errors *e)
{
	for (size_t i = 0; i < e->count; i++)
		free(e->lines[i]);
	free(e->lines);
	e->lines = NULL;
	e->count = 0;
}

/* ---------------------------------------------------------------- values */

static const char *type_name(enum sp_conf_type t)
{
	switch (t) {
	case SP_CONF_STRING: return "string";
	case SP_CONF_INT: return "integer";
	case SP_CONF_DOUBLE: return "number";
	case SP_CONF_BOOL:
	case SP_CONF_SWITCH: return "boolean";
	case SP_CONF_ENUM: return "one of";
	case SP_CONF_LIST: return "list";
	}
	return "?";
}

/* Describes what a key accepts, e.g. "integer 1..65535". */
static void describe(const struct sp_conf_key *k, char *out, size_t cap)
{
	size_t n = 0;
	switch (k->type) {
	case SP_CONF_INT:
		snprintf(out, cap, "integer %.0f..%.0f", k->min, k->max);
		return;
	case SP_CONF_DOUBLE:
		snprintf(out, cap, "number %g..%g", k->min, k->max);
		return;
	case SP_CONF_BOOL:
	case SP_CONF_SWITCH:
		snprintf(out, cap, "true or false");
		return;
	case SP_CONF_ENUM:
		n = (size_t)snprintf(out, cap, "one of");
		for (const char *const *c = k->choices; *c && n < cap; c++)
			n += (size_t)snprintf(out + n, cap - n, "%s%s", c == k->choices ? " " : ", ",
					      *c);
		return;
	case SP_CONF_STRING:
		/* a check describes what it accepts when handed an invalid (empty) value */
		if (k->check && k->check("", out, cap) != 0)
			return;
		snprintf(out, cap, "%s of %.0f..%.0f characters",
			 k->flags & SP_CONF_ID ? "identifier [a-z0-9_-]" : "text", k->min,
			 k->max > 0 ? k->max : SP_CONF_STR_MAX);
		return;
	case SP_CONF_LIST: {
		char item[200] = "";
		if (k->check)
			k->check("", item, sizeof(item));
		snprintf(out, cap, "comma-separated list of at most %.0f %s", k->max,
			 item[0] ? item : k->flags & SP_CONF_ID ? "identifiers" : "items");
		return;
	}
	}
	snprintf(out, cap, "%s", type_name(k->type));
}

static void list_free(struct sp_conf_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

/* Frees a list value's working copy; a secret's is wiped first (tokens: tokens.h). */
static void free_work(char *work, size_t size, bool secret)
{
	if (secret)
		explicit_bzero(work, size);
	free(work);
}

static void free_value(const struct sp_conf_key *k, void *target)
{
	char *dst = (char *)target + k->offset;
	if (k->type == SP_CONF_STRING) {
		free(*(char **)dst);
		*(char **)dst = NULL;
	} else if (k->type == SP_CONF_LIST) {
		list_free((struct sp_conf_list *)dst);
	}
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * Parses text into the key's slot of target. Returns 0, or non-zero with a
 * problem description in err. The slot is only changed on success. With
 * `append`, a list's items go after those it holds (at most k->max in all).
 */
static int set_value(const struct sp_conf_key *k, void *target, const char *text, bool append,
		     char *err, size_t errlen)
{
	char *dst = (char *)target + k->offset;
	char *end = NULL;
	char accepted[256];

	describe(k, accepted, sizeof(accepted));
	switch (k->type) {
	case SP_CONF_INT: {
		errno = 0;
		long long v = strtoll(text, &end, 10);
		if (*text == '\0' || *end != '\0' || errno == ERANGE || (double)v < k->min ||
		    (double)v > k->max)
			goto bad;
		*(int64_t *)dst = v;
		return 0;
	}
	case SP_CONF_DOUBLE: {
		errno = 0;
		double v = strtod(text, &end);
		if (*text == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v) ||
		    v < k->min || v > k->max)
			goto bad;
		*(double *)dst = v;
		return 0;
	}
	case SP_CONF_BOOL:
	case SP_CONF_SWITCH: {
		static const char *const yes[] = {"true", "yes", "on", "1"};
		static const char *const no[] = {"false", "no", "off", "0"};
		for (int i = 0; i < 4; i++) {
			bool y = strcasecmp(text, yes[i]) == 0;
			if (!y && strcasecmp(text, no[i]) != 0)
				continue;
			if (k->type == SP_CONF_BOOL)
				*(bool *)dst = y;
			else
				*(int *)dst = y;
			return 0;
		}
		goto bad;
	}
	case SP_CONF_ENUM:
		for (int i = 0; k->choices[i]; i++) {
			if (strcmp(text, k->choices[i]) == 0) {
				*(int *)dst = i;
				return 0;
			}
		}
		goto bad;
	case SP_CONF_STRING: {
		size_t n = strlen(text);
		size_t max = k->max > 0 ? (size_t)k->max : SP_CONF_STR_MAX;
		if (n < (size_t)k->min || n > max || ((k->flags & SP_CONF_ID) && !sp_id_valid_str(text)))
			goto bad;
		/* an empty optional string means "not set": no format check */
		if (k->check && n > 0 && k->check(text, accepted, sizeof(accepted)))
			goto bad;
		char *copy = strdup(text);
		if (copy == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		free(*(char **)dst);
		*(char **)dst = copy;
		return 0;
	}
	case SP_CONF_LIST: {
		struct sp_conf_list l = {NULL, 0};
		size_t held = append ? ((struct sp_conf_list *)dst)->count : 0;
		char *work = strdup(text), *save = NULL;
		size_t work_size = strlen(text) + 1;
		bool secret = (k->flags & SP_CONF_SECRET) != 0;
		if (work == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		for (char *tok = strtok_r(work, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char *item = trim(tok);
			if (*item == '\0')
				continue;
			bool too_many = held + l.count >= (size_t)k->max;
			if (too_many || strlen(item) > SP_CONF_STR_MAX ||
			    ((k->flags & SP_CONF_ID) && !sp_id_valid_str(item)) ||
			    (k->check && k->check(item, accepted, sizeof(accepted)))) {
				list_free(&l);
				/* the item at fault: in a long list the value would hide it */
				if (!too_many && !(k->flags & SP_CONF_SECRET)) {
					snprintf(err, errlen, "bad value \"%.80s\" in the list (accepted: %s)",
						 item, accepted);
					free_work(work, work_size, secret);
					return -1;
				}
				free_work(work, work_size, secret);
				goto bad;
			}
			char **p = realloc(l.items, (l.count + 1) * sizeof(*p));
			char *copy = strdup(item);
			if (p == NULL || copy == NULL) {
				free(copy);
				if (p)
					l.items = p;
				list_free(&l);
				free_work(work, work_size, secret);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			l.items = p;
			l.items[l.count++] = copy;
		}
		free_work(work, work_size, secret);
		if (append && l.count == 0)
			return 0; /* an empty line adds nothing (l.items is NULL) */
		if (append && held > 0) {
			struct sp_conf_list *have = (struct sp_conf_list *)dst;
			char **p = realloc(have->items, (held + l.count) * sizeof(*p));
			if (p == NULL) {
				list_free(&l);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			memcpy(p + held, l.items, l.count * sizeof(*p));
			free(l.items);
			have->items = p;
			have->count = held + l.count;
			return 0;
		}
		free_value(k, target);
		*(struct sp_conf_list *)dst = l;
		return 0;
	}
	}
bad:
	if (k->flags & SP_CONF_SECRET)
		snprintf(err, errlen, "bad value (accepted: %s)", accepted);
	else
		snprintf(err, errlen, "bad value \"%.80s\" (accepted: %s)", text, accepted);
	return -1;
}

static int apply_defaults(const struct sp_conf_key *keys, size_t nkeys, void *target)
{
	char err[512];
	for (size_t i = 0; i < nkeys; i++) {
		if (keys[i].def == NULL)
			continue;
		if (set_value(&keys[i], target, keys[i].def, false, err, sizeof(err)))
			return SP_ENOMEM; /* defaults are valid by construction; see unit test */
	}
	return 0;
}

int sp_conf_defaults(const struct sp_conf_schema *s, void *root)
{
	for (size_t i = 0; i < s->nsections; i++) {
		const struct sp_conf_section *sec = &s->sections[i];
		if (sec->instance)
			continue;
		int rc = apply_defaults(sec->keys, sec->nkeys, (char *)root + sec->offset);
		if (rc)
			return rc;
	}
	return 0;
}

void sp_conf_free_keys(const struct sp_conf_key *keys, size_t nkeys, void *target)
{
	for (size_t i = 0; i < nkeys; i++)
		free_value(&keys[i], target);
}

void sp_conf_free(const struct sp_conf_schema *s, void *root)
{
	for (size_t i = 0; i < s->nsections; i++)
		if (!s->sections[i].instance)
			sp_conf_free_keys(s->sections[i].keys, s->sections[i].nkeys,
					  (char *)root + s->sections[i].offset);
}

/* ---------------------------------------------------------------- sections */

/*
 * Matches a section name against a pattern; captured segments are copied
 * into parts (each up to SP_ID_MAX... or the rest for the last star).
 */
static bool match_section(const char *pattern, const char *name, char parts[MAX_PARTS][256],
			  size_t *nparts)
{
	*nparts = 0;
	while (*pattern) {
		if (*pattern == '*') {
			bool last = strchr(pattern + 1, '*') == NULL;
			const char *stop = last ? name + strlen(name) : strchr(name, '.');
			/* a non-final star matches a dot-free segment followed by the pattern rest */
			if (!last) {
				if (stop == NULL)
					return false;
			}
			size_t n = (size_t)(stop - name);
			if (n == 0 || n >= 256 || *nparts >= MAX_PARTS)
				return false;
			memcpy(parts[*nparts], name, n);
			parts[*nparts][n] = '\0';
			(*nparts)++;
			name = stop;
			pattern++;
			continue;
		}
		if (*pattern != *name)
			return false;
		pattern++;
		name++;
	}
	return *name == '\0';
}

struct seen_entry {
	char *name; /* "section\nkey", or "section\n" for the header */
	int line;
};

/* Where one load found its keys and section headers (conf.h). */
struct sp_conf_where {
	struct seen_entry *seen;
	size_t nseen;
};

struct load_ctx {
	const struct sp_conf_schema *schema;
	void *root;
	const char *origin;          /* file name */
	FILE *file;
	int line;                    /* current line number (counted by the reader) */
	struct sp_conf_errors *errs;
	size_t errs_at_start;
	/* section cache: the last [section] header resolved */
	char cur_name[256];
	const struct sp_conf_section *cur_sec;
	void *cur_target;
	bool cur_bad;                /* unknown/invalid section: its keys are skipped */
	/*
	 * "section\nkey" of every key set so far, to reject repeats, and
	 * "section\n" of every section header, each with its first line: kept
	 * for sp_conf_where when the caller asks
	 */
	struct seen_entry *seen;
	size_t nseen;
	bool secret_set;
	/* instance sections created by this load, to check their required keys */
	struct {
		char name[256];
		const struct sp_conf_section *sec;
	} *instances;
	size_t ninstances;
	char raw[RAW_LINE_MAX + 2];
	int syntax_error_line;       /* line whose syntax error we already reported */
	int read_errno;              /* the file could not be read (e.g. a directory): its errno */
};

static void resolve_section(struct load_ctx *c, const char *section)
{
	char parts[MAX_PARTS][256];
	const char *ptrs[MAX_PARTS];
	size_t nparts;
	char err[256] = "";

	snprintf(c->cur_name, sizeof(c->cur_name), "%s", section);
	c->cur_sec = NULL;
	c->cur_target = NULL;
	c->cur_bad = true;
	for (size_t i = 0; i < c->schema->nsections; i++) {
		const struct sp_conf_section *sec = &c->schema->sections[i];
		if (!match_section(sec->name, section, parts, &nparts))
			continue;
		if (sec->instance == NULL) {
			c->cur_sec = sec;
			c->cur_target = (char *)c->root + sec->offset;
			c->cur_bad = false;
			return;
		}
		for (size_t p = 0; p < nparts; p++)
			ptrs[p] = parts[p];
		bool created = false;
		void *t = sec->instance(c->root, ptrs, nparts, &created, err, sizeof(err));
		if (t == NULL) {
			sp_conf_errors_add(c->errs, "%s:%d: [%s]: %s", c->origin, c->line, section,
					   err[0] ? err : "cannot create section");
			return;
		}
		if (created && apply_defaults(sec->keys, sec->nkeys, t)) {
			sp_conf_errors_add(c->errs, "%s:%d: [%s]: out of memory", c->origin, c->line,
					   section);
			return;
		}
		if (created) {
			void *p = realloc(c->instances, (c->ninstances + 1) * sizeof(*c->instances));
			if (p != NULL) {
				c->instances = p;
				snprintf(c->instances[c->ninstances].name, 256, "%s", section);
				c->instances[c->ninstances++].sec = sec;
			}
		}
		c->cur_sec = sec;
		c->cur_target = t;
		c->cur_bad = false;
		return;
	}
	sp_conf_errors_add(c->errs, "%s:%d: [%s]: unknown section", c->origin, c->line, section);
}

static bool was_seen(const struct load_ctx *c, const char *section, const char *key);

/* Records that section/key was set; returns 1 if it already was. */
static int remember_key(struct load_ctx *c, const char *section, const char *key)
{
	size_t sl = strlen(section), kl = strlen(key);
	if (was_seen(c, section, key))
		return 1;
	/* no memory: the key is still set, only its repeat or line goes unnoticed */
	struct seen_entry *p = realloc(c->seen, (c->nseen + 1) * sizeof(*p));
	if (p == NULL)
		return 0;
	c->seen = p;
	char *entry = malloc(sl + kl + 2);
	if (entry == NULL)
		return 0;
	memcpy(entry, section, sl);
	entry[sl] = '\n';
	memcpy(entry + sl + 1, key, kl + 1);
	c->seen[c->nseen++] = (struct seen_entry){entry, c->line};
	return 0;
}

static const struct sp_conf_key *find_key(const struct sp_conf_section *sec, const char *name)
{
	for (size_t i = 0; i < sec->nkeys; i++)
		if (strcmp(sec->keys[i].name, name) == 0)
			return &sec->keys[i];
	return NULL;
}

/*
 * Sets one key of the current section. The section is the one our reader
 * saw in the last [header] (inih's own copy of the name is cut at 50
 * characters, too short for [site.<64-character id>]).
 */
static void set_key(struct load_ctx *c, const char *name, const char *value)
{
	char err[512];
	const char *section = c->cur_name;

	if (c->cur_bad)
		return; /* the section header was already reported */
	const struct sp_conf_key *k = find_key(c->cur_sec, name);
	if (k == NULL) {
		sp_conf_errors_add(c->errs, "%s:%d: [%s] %s: unknown key", c->origin, c->line,
				   section, name);
		return;
	}
	/*
	 * A list key given again adds to the list: inih's lines are at most
	 * INIH_LINE_MAX characters, so a long list of recipients or tokens
	 * could otherwise not be written at all. Any other key given twice is
	 * a mistake (which one was meant?).
	 */
	bool again = remember_key(c, section, name);
	if (again && k->type != SP_CONF_LIST) {
		sp_conf_errors_add(c->errs, "%s:%d: [%s] %s: key given more than once", c->origin,
				   c->line, section, name);
		return;
	}
	if (set_value(k, c->cur_target, value, again, err, sizeof(err))) {
		sp_conf_errors_add(c->errs, "%s:%d: [%s] %s: %s", c->origin, c->line, section, name,
				   err);
		return;
	}
	if (k->flags & SP_CONF_SECRET)
		c->secret_set = true;
}

static int ini_handler_cb(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *c = user;
	(void)section;
	if (c->cur_name[0] == '\0') {
		sp_conf_errors_add(c->errs, "%s:%d: %s: key outside any [section]", c->origin,
				   c->line, name);
		return 1;
	}
	set_key(c, name, value);
	return 1; /* keep going: report every error in one run */
}

/*
 * A [section] header line: resolve it now, so it is checked (and reported at
 * its own line) even without keys.
 */
static void section_header(struct load_ctx *c, const char *text)
{
	char name[256];
	const char *close = strchr(text, ']');
	size_t n = (size_t)(close - text - 1);
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, text + 1, n);
	name[n] = '\0';
	resolve_section(c, trim(name));
	if (!c->cur_bad)
		remember_key(c, c->cur_name, ""); /* its first header's line (no key is named "") */
}

/*
 * inih's line reader: hands inih one physical line at a time (so c->line is
 * the line of the next handler call), without leading blanks, and reports
 * lines inih would mis-handle.
 */
static char *reader_cb(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	size_t n = 0;
	int ch;

	if (feof(c->file))
		return NULL;
	while ((ch = fgetc(c->file)) != EOF && ch != '\n') {
		if (n < RAW_LINE_MAX)
			c->raw[n] = (char)ch;
		n++;
	}
	/*
	 * A read error looks like the end of the file to inih: without this a
	 * directory given as --config read as an empty file, and the program
	 * started on every default.
	 */
	if (ch == EOF && ferror(c->file)) {
		c->read_errno = errno ? errno : EIO;
		return NULL;
	}
	if (ch == EOF && n == 0)
		return NULL;
	c->line++;
	if (n > RAW_LINE_MAX)
		n = RAW_LINE_MAX;
	c->raw[n] = '\0';
	char *text = c->raw;
	/* a UTF-8 byte order mark (some Windows editors write one): before the checks below */
	if (c->line == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0)
		text += 3;
	while (*text == ' ' || *text == '\t')
		text++;
	/* strip a trailing CR of CRLF files */
	size_t len = strlen(text);
	if (len && text[len - 1] == '\r')
		text[--len] = '\0';

	if (len > INIH_LINE_MAX || (size_t)num < INIH_LINE_MAX + 2) {
		sp_conf_errors_add(c->errs, "%s:%d: line too long (at most %d characters)", c->origin,
				   c->line, INIH_LINE_MAX);
		text = "";
		len = 0;
	} else if (len && text[0] != ';' && text[0] != '#') {
		/*
		 * An inline comment after a blank and '#', as inih takes one after a
		 * blank and ';': CONTRACT §7 names both as comments, and a file
		 * written `seed = 1   # fixed` was refused (bad value "1   # fixed").
		 * A '#' without a blank before it stays in the value (user#1).
		 */
		if (text[0] != '[') {
			for (size_t i = 1; i < len; i++) {
				if (text[i] == '#' && (text[i - 1] == ' ' || text[i - 1] == '\t')) {
					text[i] = '\0';
					len = i;
					break;
				}
			}
		}
		/* what inih would reject: a section without ']' or a line without '=' or ':' */
		bool bad = text[0] == '[' ? strchr(text, ']') == NULL
					  : strpbrk(text, "=:") == NULL;
		if (bad) {
			sp_conf_errors_add(c->errs,
					   "%s:%d: syntax error (expected [section] or key = value)",
					   c->origin, c->line);
			c->syntax_error_line = c->line;
			if (text[0] == '[') {
				/* a broken header: skip its keys rather than file them elsewhere */
				snprintf(c->cur_name, sizeof(c->cur_name), "%.200s", text);
				c->cur_sec = NULL;
				c->cur_bad = true;
			}
			text = "";
			len = 0;
		} else if (text[0] == '[') {
			section_header(c, text);
		}
	}
	memcpy(str, text, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static const struct seen_entry *find_seen(const struct seen_entry *seen, size_t n,
					 const char *section, const char *key)
{
	size_t sl = strlen(section);
	for (size_t i = 0; i < n; i++)
		if (strncmp(seen[i].name, section, sl) == 0 && seen[i].name[sl] == '\n' &&
		    strcmp(seen[i].name + sl + 1, key) == 0)
			return &seen[i];
	return NULL;
}

static bool was_seen(const struct load_ctx *c, const char *section, const char *key)
{
	return find_seen(c->seen, c->nseen, section, key) != NULL;
}

static void check_required_keys(struct load_ctx *c, const struct sp_conf_section *sec,
				const char *section)
{
	for (size_t j = 0; j < sec->nkeys; j++)
		if ((sec->keys[j].flags & SP_CONF_REQUIRED) && !was_seen(c, section, sec->keys[j].name))
			sp_conf_errors_add(c->errs, "%s: [%s] %s: required key missing", c->origin,
					   section, sec->keys[j].name);
}

static void warn_if_exposed(struct load_ctx *c)
{
	struct stat st;
	if (!c->secret_set || fstat(fileno(c->file), &st) != 0)
		return;
	if (st.st_mode & (S_IROTH | S_IWOTH))
		SP_WARN("config",
			"%s holds secrets and is readable by other users; chmod o-rwx it",
			c->origin);
}

static int load_stream(const struct sp_conf_schema *s, FILE *f, const char *origin, void *root,
		       struct sp_conf_errors *errs, struct sp_conf_where **where)
{
	struct load_ctx *c = calloc(1, sizeof(*c));
	int rc = 0;

	if (c == NULL) {
		sp_conf_errors_add(errs, "%s: out of memory", origin);
		return SP_ECONFIG;
	}
	c->schema = s;
	c->root = root;
	c->origin = origin;
	c->errs = errs;
	c->errs_at_start = errs->count;
	c->file = f;
	int first_error = ini_parse_stream(reader_cb, c, ini_handler_cb, c);
	if (first_error > 0 && first_error != c->syntax_error_line && errs->count == c->errs_at_start)
		sp_conf_errors_add(errs, "%s:%d: syntax error", origin, first_error);
	else if (first_error < 0)
		sp_conf_errors_add(errs, "%s: cannot read", origin);
	if (c->read_errno)
		sp_conf_errors_add(errs, "%s: cannot read: %s", origin, strerror(c->read_errno));
	for (size_t i = 0; i < s->nsections; i++)
		if (s->sections[i].instance == NULL)
			check_required_keys(c, &s->sections[i], s->sections[i].name);
	for (size_t i = 0; i < c->ninstances; i++)
		check_required_keys(c, c->instances[i].sec, c->instances[i].name);
	warn_if_exposed(c);
	if (errs->count > c->errs_at_start)
		rc = SP_ECONFIG;
	struct sp_conf_where *w = where ? malloc(sizeof(*w)) : NULL;
	if (w != NULL) {
		w->seen = c->seen;
		w->nseen = c->nseen;
		c->seen = NULL;
		c->nseen = 0;
		*where = w;
	}
	for (size_t i = 0; i < c->nseen; i++)
		free(c->seen[i].name);
	free(c->seen);
	free(c->instances);
	free(c);
	return rc;
}

int sp_conf_load_stream(const struct sp_conf_schema *s, FILE *f, const char *origin, void *root,
			struct sp_conf_errors *errs)
{
	return load_stream(s, f, origin, root, errs, NULL);
}

int sp_conf_load_where(const struct sp_conf_schema *s, const char *path, void *root,
		       struct sp_conf_errors *errs, struct sp_conf_where **where)
{
	if (where)
		*where = NULL;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		sp_conf_errors_add(errs, "%s: cannot open: %s", path, strerror(errno));
		return SP_ECONFIG;
	}
	int rc = load_stream(s, f, path, root, errs, where);
	fclose(f);
	return rc;
}

int sp_conf_load(const struct sp_conf_schema *s, const char *path, void *root,
		 struct sp_conf_errors *errs)
{
	return sp_conf_load_where(s, path, root, errs, NULL);
}

int sp_conf_where_line(const struct sp_conf_where *w, const char *section, const char *key)
{
	if (w == NULL)
		return 0;
	const struct seen_entry *e = key ? find_seen(w->seen, w->nseen, section, key) : NULL;
	if (e == NULL)
		e = find_seen(w->seen, w->nseen, section, "");
	return e ? e->line : 0;
}

void sp_conf_where_free(struct sp_conf_where *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->nseen; i++)
		free(w->seen[i].name);
	free(w->seen);
	free(w);
}

int sp_conf_set(const struct sp_conf_schema *s, void *root, const char *section,
		const char *key, const char *value, const char *origin,
		struct sp_conf_errors *errs)
{
	char err[512];
	for (size_t i = 0; i < s->nsections; i++) {
		const struct sp_conf_section *sec = &s->sections[i];
		if (sec->instance || strcmp(sec->name, section) != 0)
			continue;
		const struct sp_conf_key *k = find_key(sec, key);
		if (k == NULL)
			break;
		if (set_value(k, (char *)root + sec->offset, value, false, err, sizeof(err))) {
			sp_conf_errors_add(errs, "%s: [%s] %s: %s", origin, section, key, err);
			return SP_ECONFIG;
		}
		return 0;
	}
	sp_conf_errors_add(errs, "%s: [%s] %s: unknown key", origin, section, key);
	return SP_ECONFIG;
}

/* ---------------------------------------------------------------- reference */

void sp_conf_print_reference(const struct sp_conf_schema *s, FILE *out, bool markdown)
{
	char accepted[256];
	for (size_t i = 0; i < s->nsections; i++) {
		const struct sp_conf_section *sec = &s->sections[i];
		if (markdown)
			fprintf(out, "### `[%s]`\n\n%s\n\n| key | accepted | default | meaning |\n"
				     "|---|---|---|---|\n",
				sec->name, sec->help ? sec->help : "");
		else
			fprintf(out, "  [%s]%s%s\n", sec->name, sec->help ? "  " : "",
				sec->help ? sec->help : "");
		for (size_t j = 0; j < sec->nkeys; j++) {
			const struct sp_conf_key *k = &sec->keys[j];
			const char *def = k->flags & SP_CONF_REQUIRED ? "(required)"
					  : k->def && *k->def                ? k->def
									     : "(none)";
			describe(k, accepted, sizeof(accepted));
			if (markdown)
				fprintf(out, "| `%s` | %s | `%s` | %s%s |\n", k->name, accepted, def,
					k->help, k->flags & SP_CONF_SECRET ? " (secret)" : "");
			else
				fprintf(out, "    %-18s %s [default %s]\n%24s(%s)\n", k->name, k->help,
					def, "", accepted);
		}
		fprintf(out, "\n");
	}
}

/* ---------------------------------------------------------------- checks */

int sp_conf_parse_hostport(const char *text, char *host, size_t hostlen, int *port)
{
	const char *colon;
	size_t hl;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':')
			return SP_EINVAL;
		hl = (size_t)(close - text - 1);
		if (hl == 0 || hl >= hostlen)
			return SP_EINVAL;
		memcpy(host, text + 1, hl);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL)
			return SP_EINVAL;
		hl = (size_t)(colon - text);
		if (hl == 0 || hl >= hostlen || memchr(text, ':', hl) != NULL)
			return SP_EINVAL;
		memcpy(host, text, hl);
	}
	host[hl] = '\0';
	char *end;
	errno = 0;
	long p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535)
		return SP_EINVAL;
	*port = (int)p;
	return 0;
}

int sp_conf_check_hostport(const char *value, char *err, size_t errlen)
{
	char host[256];
	int port;
	if (sp_conf_parse_hostport(value, host, sizeof(host), &port) == 0)
		return 0;
	snprintf(err, errlen, "HOST:PORT or [IPV6]:PORT, port 0..65535");
	return -1;
}

int sp_conf_check_mqtt_uri(const char *value, char *err, size_t errlen)
{
	static const char *const schemes[] = {"tcp://", "ssl://", "mqtt://", "mqtts://"};
	for (int i = 0; i < 4; i++) {
		size_t n = strlen(schemes[i]);
		if (strncmp(value, schemes[i], n) == 0) {
			char host[256];
			int port;
			if (sp_conf_parse_hostport(value + n, host, sizeof(host), &port) == 0 &&
			    port > 0)
				return 0;
			break;
		}
	}
	snprintf(err, errlen, "tcp://HOST:PORT or ssl://HOST:PORT");
	return -1;
}

int sp_conf_check_timezone(const char *value, char *err, size_t errlen)
{
	char path[512];
	struct stat st;
	bool ok = value[0] != '\0' && value[0] != '/' && strstr(value, "..") == NULL;
	for (const char *p = value; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr("/_-+", *p) != NULL;
	if (ok) {
		snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", value);
		ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	}
	if (ok)
		return 0;
	snprintf(err, errlen, "an IANA time zone such as Asia/Shanghai");
	return -1;
}
