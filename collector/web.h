/*
 * web.h - the static files of the operators' dashboard (web/), embedded in
 * the binary at build time: which URL path serves which file, with what
 * content type. Pure: no I/O, no allocation; the bytes live as long as the
 * program.
 */
#ifndef SP_COLLECTOR_WEB_H
#define SP_COLLECTOR_WEB_H

#include <stddef.h>

struct web_file {
	const char *path;          /* URL path, e.g. "/" or "/dashboard.js" */
	const char *name;          /* the file in web/, e.g. "dashboard.html" */
	const char *content_type;  /* e.g. "text/html; charset=utf-8" */
	const unsigned char *data; /* static, never freed; len bytes */
	size_t len;
};

/*
 * The file served at path (a URL path without query string; compared
 * exactly, case-sensitively). Returns 0 with *out set, or SP_ENOTFOUND.
 */
int web_find_file(const char *path, struct web_file *out);

/* How many URL paths serve a file. */
size_t web_count_files(void);

/* The i-th of them (0 <= i < web_count_files()): 0 with *out set, or SP_ENOTFOUND. */
int web_get_file(size_t i, struct web_file *out);

#endif
