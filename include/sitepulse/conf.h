/*
 * conf.h - declarative configuration tables on top of libinih.
 *
 * A program describes its configuration once, as tables of sections and
 * keys (name, type, default, range, target offset, help). The same tables
 * drive parsing, defaults, validation, `--help`, and the reference in
 * docs/configuration.md (checked by a test). Files are INI: `[section]`,
 * `key = value`, `;` or `#` at the start of a line, ` ;` before an inline
 * comment. Leading blanks are ignored (no multi-line values); so is a UTF-8
 * byte order mark opening the file.
 *
 * Errors are complete: one load reports every bad line as
 * "FILE:LINE: [section] key: problem (accepted: range)", unknown and
 * repeated keys included. Load into a fresh struct and use it only when
 * the load returned 0.
 */
#ifndef SP_CONF_H
#define SP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum sp_conf_type {
	SP_CONF_STRING, /* char *, owned by the config (sp_conf_free) */
	SP_CONF_INT,    /* int64_t in [min, max] */
	SP_CONF_DOUBLE, /* double in [min, max] */
	SP_CONF_BOOL,   /* bool: true/false, yes/no, on/off, 1/0 */
	SP_CONF_SWITCH, /* int: as BOOL, 1 or 0; a key without a default stays as the owner set it
			   (e.g. -1 = "not said", so a more specific section can inherit) */
	SP_CONF_ENUM,   /* int: index into choices */
	SP_CONF_LIST,   /* struct sp_conf_list: comma-separated strings */
};

enum {
	SP_CONF_REQUIRED = 1u << 0, /* must be given (no default) */
	SP_CONF_SECRET = 1u << 1,   /* never printed; file should not be world-readable */
	SP_CONF_ID = 1u << 2,       /* string (or list items) must be a CONTRACT §1 identifier */
};

#define SP_CONF_STR_MAX 4096 /* default length limit of a string value */

/* A numeric constant as a key's default text: the default is named once, e.g. in store.h. */
#define SP_CONF_DEFAULT(x) SP_CONF_DEFAULT_(x)
#define SP_CONF_DEFAULT_(x) #x

struct sp_conf_list {
	char **items;
	size_t count;
};

/*
 * Extra check of a string value. Returns 0, or non-zero after writing a
 * short description of what is accepted into err. Must reject "" (the
 * reference documentation asks it for its description that way; an empty
 * optional value is never checked).
 */
typedef int (*sp_conf_check_fn)(const char *value, char *err, size_t errlen);

struct sp_conf_key {
	const char *name;
	enum sp_conf_type type;
	size_t offset;              /* of the value in the section's struct */
	const char *def;            /* default, as text; NULL = none */
	double min, max;            /* INT/DOUBLE range; STRING length (max 0 =
				       SP_CONF_STR_MAX); LIST items */
	const char *const *choices; /* ENUM: NULL-terminated list */
	unsigned flags;             /* SP_CONF_* */
	sp_conf_check_fn check;     /* optional */
	const char *help;
};

/*
 * A section. `name` is either fixed ("mqtt") or a pattern ending in ".*"
 * ("site.*"), whose instances ([site.hp-1]) are created on first sight by
 * `instance`. A pattern may hold one more "*" before (e.g. "site.*.rule.*"):
 * each "*" but the last matches one dot-free segment, the last the rest.
 */
struct sp_conf_section {
	const char *name;
	const struct sp_conf_key *keys;
	size_t nkeys;
	size_t offset; /* fixed sections: of the section struct within the root struct */
	/*
	 * Instance sections: returns the struct for the instance named by the
	 * captured segments (parts[0..nparts-1]), creating it zeroed (then
	 * *created = true; defaults are applied by the loader). NULL with err
	 * filled when it cannot exist (e.g. a bad name or too many).
	 */
	void *(*instance)(void *root, const char *const *parts, size_t nparts, bool *created,
			  char *err, size_t errlen);
	const char *help;
};

struct sp_conf_schema {
	const char *program;
	const struct sp_conf_section *sections;
	size_t nsections;
};

/* Collected error lines. */
struct sp_conf_errors {
	char **lines;
	size_t count;
};

void sp_conf_errors_add(struct sp_conf_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sp_conf_errors_print(const struct sp_conf_errors *e, FILE *out);
void sp_conf_errors_free(struct sp_conf_errors *e);

/* Applies the defaults of every fixed section to root. 0 or SP_ENOMEM. */
int sp_conf_defaults(const struct sp_conf_schema *s, void *root);

/*
 * Reads the file at path into root (already holding defaults). Every
 * problem is appended to errs. Returns 0, or SP_ECONFIG if errs gained
 * lines. Logs a warning when a file that sets a secret key is readable by
 * other users.
 */
int sp_conf_load(const struct sp_conf_schema *s, const char *path, void *root,
		 struct sp_conf_errors *errs);

/*
 * Where a load found each key and [section] header: the lines, for checks
 * made after the load that span several keys (the agent's simulated site),
 * so that their messages name the line as the loader's own do.
 */
struct sp_conf_where;
/*
 * sp_conf_load, also handing back *where (the caller frees it with
 * sp_conf_where_free; NULL when the file could not be opened or memory
 * was short: the lines are then unknown, the load is not affected).
 */
int sp_conf_load_where(const struct sp_conf_schema *s, const char *path, void *root,
		       struct sp_conf_errors *errs, struct sp_conf_where **where);
/*
 * The line of section's key in the file, else (key absent, or NULL) the
 * line of the section's first header; 0 when neither is in the file or w
 * is NULL. section as written in the file's header ("scenario.x").
 */
int sp_conf_where_line(const struct sp_conf_where *w, const char *section, const char *key);
void sp_conf_where_free(struct sp_conf_where *w); /* NULL ok */
/* Same as sp_conf_load, from an open stream (origin names it in messages; the stream is not closed). */
int sp_conf_load_stream(const struct sp_conf_schema *s, FILE *f, const char *origin, void *root,
			struct sp_conf_errors *errs);

/*
 * Sets one key from another origin (e.g. origin "--broker" for a command
 * line override). Errors go to errs as "ORIGIN: [section] key: problem".
 * Returns 0 or SP_ECONFIG.
 */
int sp_conf_set(const struct sp_conf_schema *s, void *root, const char *section,
		const char *key, const char *value, const char *origin,
		struct sp_conf_errors *errs);

/* Frees what the loader allocated in the fixed sections of root. */
void sp_conf_free(const struct sp_conf_schema *s, void *root);

/* Frees what the loader allocated in one section struct (for instance sections). */
void sp_conf_free_keys(const struct sp_conf_key *keys, size_t nkeys, void *target);

/* Prints the key reference: plain text for --help, or Markdown for docs/. */
void sp_conf_print_reference(const struct sp_conf_schema *s, FILE *out, bool markdown);

/* Parses "HOST:PORT" / "[V6]:PORT". Returns 0 or SP_EINVAL. host must hold 256 bytes. */
int sp_conf_parse_hostport(const char *text, char *host, size_t hostlen, int *port);

/* Reusable checks. */
int sp_conf_check_hostport(const char *value, char *err, size_t errlen);
int sp_conf_check_mqtt_uri(const char *value, char *err, size_t errlen);
int sp_conf_check_timezone(const char *value, char *err, size_t errlen);

#endif
