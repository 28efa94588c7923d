/*
 * test_web.c - the dashboard's embedded files (collector/web.c): every URL
 * path maps to a file, with the right content type, holding exactly the
 * bytes of the source file in $SP_SOURCE_DIR/web; nothing else is found;
 * the router sends exactly these paths to the static route; the script
 * names no API that parses markup.
 */
#include "harness.h"

#include "apiparse.h"
#include "web.h"
#include "web_blobs.h"

#include "sitepulse/error.h"

#include <stdint.h>

/* The source file's bytes (malloc'd, *len set), or NULL. */
static unsigned char *read_source(const char *name, size_t *len)
{
	const char *src = getenv("SP_SOURCE_DIR");
	char path[4096];
	unsigned char *buf = NULL;
	snprintf(path, sizeof(path), "%s/web/%s", src ? src : ".", name);
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "  cannot open %s (SP_SOURCE_DIR=%s)\n", path,
			src ? src : "(unset)");
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0) {
		long n = ftell(f);
		if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL &&
		    fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = n >= 0 ? (size_t)n : 0;
	}
	fclose(f);
	return buf;
}

static void check_file(const char *path, const char *name, const char *type)
{
	struct web_file f;
	size_t len = 0;
	CHECK_EQ_INT(web_find_file(path, &f), 0);
	CHECK_EQ_STR(f.path, path);
	CHECK_EQ_STR(f.name, name);
	CHECK_EQ_STR(f.content_type, type);
	unsigned char *src = read_source(name, &len);
	CHECK(src != NULL);
	if (src == NULL)
		return;
	CHECK_EQ_INT(f.len, len);
	CHECK(f.len == len && memcmp(f.data, src, len) == 0);
	CHECK(f.len > 0);
	free(src);
}

static void test_every_path_maps(void)
{
	check_file("/", "dashboard.html", "text/html; charset=utf-8");
	check_file("/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8");
	check_file("/dashboard.css", "dashboard.css", "text/css; charset=utf-8");
	check_file("/favicon.svg", "favicon.svg", "image/svg+xml");
	CHECK_EQ_INT(web_count_files(), 4);
}

/* Listing: each entry is found again by its path; every embedded file is served. */
static void test_listing(void)
{
	struct web_file f, g;
	for (size_t i = 0; i < web_count_files(); i++) {
		CHECK_EQ_INT(web_get_file(i, &f), 0);
		CHECK_EQ_INT(web_find_file(f.path, &g), 0);
		CHECK(f.data == g.data && f.len == g.len);
	}
	CHECK_EQ_INT(web_get_file(web_count_files(), &f), SP_ENOTFOUND);
	CHECK_EQ_INT(web_get_file(SIZE_MAX, &f), SP_ENOTFOUND);
	for (size_t k = 0; k < web_blobs_count; k++) {
		bool served = false;
		for (size_t i = 0; i < web_count_files(); i++)
			served |= web_get_file(i, &f) == 0 && f.data == web_blobs[k].data;
		if (!served)
			fprintf(stderr, "  embedded but not served: %s\n", web_blobs[k].name);
		CHECK(served);
		CHECK_EQ_INT(web_blobs[k].data[web_blobs[k].len], 0); /* the NUL after the bytes */
	}
}

static void test_unknown_paths(void)
{
	struct web_file f;
	const char *bad[] = {"",
			     "/dashboard.html", /* served as "/" only */
			     "/index.html",
			     "/DASHBOARD.JS",
			     "/dashboard.js/",
			     "//",
			     "/./dashboard.js",
			     "/../web/dashboard.js",
			     "/web/dashboard.css",
			     "dashboard.js",
			     "/dashboard.jsx",
			     "/favicon.ico"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (web_find_file(bad[i], &f) != SP_ENOTFOUND)
			fprintf(stderr, "  found: \"%s\"\n", bad[i]);
		CHECK_EQ_INT(web_find_file(bad[i], &f), SP_ENOTFOUND);
	}
}

/*
 * The dashboard shows text that devices wrote: its script never names an API
 * that parses markup or code (docs/dashboard.md), not even in a comment.
 */
static void test_no_markup_sinks(void)
{
	static const char *const sinks[] = {
	    "innerHTML",
	    "outerHTML",
	    "insertAdjacentHTML",
	    "document.write",
	    "createContextualFragment",
	    "DOMParser",
	    "srcdoc",
	    "eval(",
	    "Function(",
	    "javascript:",
	    "setTimeout(\"",
	    "setInterval(\"",
	};
	struct web_file f;
	CHECK_EQ_INT(web_find_file("/dashboard.js", &f), 0);
	for (size_t i = 0; i < sizeof(sinks) / sizeof(sinks[0]); i++) {
		bool found = memmem(f.data, f.len, sinks[i], strlen(sinks[i])) != NULL;
		if (found)
			fprintf(stderr, "  dashboard.js uses %s\n", sinks[i]);
		CHECK(!found);
	}
}

/* The router sends exactly the files' paths to ROUTE_STATIC, which needs no token. */
static void test_routing_agrees(void)
{
	struct web_file f;
	int64_t id = 0;
	for (size_t i = 0; i < web_count_files(); i++) {
		CHECK_EQ_INT(web_get_file(i, &f), 0);
		CHECK_EQ_INT(apiparse_route(f.path, &id), ROUTE_STATIC);
	}
	CHECK(!apiparse_route_needs_token(ROUTE_STATIC));
	CHECK_EQ_INT(apiparse_route("/index.html", &id), ROUTE_NOT_FOUND);
}

int main(void)
{
	RUN(test_every_path_maps);
	RUN(test_listing);
	RUN(test_unknown_paths);
	RUN(test_routing_agrees);
	RUN(test_no_markup_sinks);
	HARNESS_EXIT();
}
