/*
 * web.c - the dashboard's embedded files (see web.h).
 *
 * The URL paths and content types are listed here; the bytes come from
 * web_blobs.c, generated from web/ at build time. A path whose file was not
 * embedded is not found (tests/unit/test_web.c checks that none is missing).
 * The table is small and fixed: lookups are a linear scan.
 */
#include "web.h"

#include "web_blobs.h"

#include "sitepulse/error.h"

#include <string.h>

static const struct {
	const char *path, *name, *content_type;
} routes[] = {
	{"/", "dashboard.html", "text/html; charset=utf-8"},
	{"/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"},
	{"/dashboard.css", "dashboard.css", "text/css; charset=utf-8"},
	/* declared by the page, so browsers do not ask for /favicon.ico (a 404 in their console) */
	{"/favicon.svg", "favicon.svg", "image/svg+xml"},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static int fill(size_t i, struct web_file *out)
{
	for (size_t k = 0; k < web_blobs_count; k++)
		if (strcmp(web_blobs[k].name, routes[i].name) == 0) {
			out->path = routes[i].path;
			out->name = routes[i].name;
			out->content_type = routes[i].content_type;
			out->data = web_blobs[k].data;
			out->len = web_blobs[k].len;
			return 0;
		}
	return SP_ENOTFOUND;
}

int web_find_file(const char *path, struct web_file *out)
{
	for (size_t i = 0; i < NROUTES; i++)
		if (strcmp(path, routes[i].path) == 0)
			return fill(i, out);
	return SP_ENOTFOUND;
}

size_t web_count_files(void)
{
	return NROUTES;
}

int web_get_file(size_t i, struct web_file *out)
{
	return i < NROUTES ? fill(i, out) : SP_ENOTFOUND;
}
