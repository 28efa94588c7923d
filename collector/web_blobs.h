/*
 * web_blobs.h - the bytes of the dashboard's files, compiled into the
 * collector. The definitions are generated at build time from web/ by
 * cmake/embed_files.cmake (web_blobs.c in the build tree); only web.c and
 * tests read them.
 */
#ifndef SP_COLLECTOR_WEB_BLOBS_H
#define SP_COLLECTOR_WEB_BLOBS_H

#include <stddef.h>

struct web_blob {
	const char *name;          /* the source file's base name, e.g. "dashboard.js" */
	const unsigned char *data; /* len bytes, then a NUL */
	size_t len;
};

extern const struct web_blob web_blobs[];
extern const size_t web_blobs_count;

#endif
