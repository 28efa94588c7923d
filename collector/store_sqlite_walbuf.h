/*
 * store_sqlite_walbuf.h - a SQLite VFS over the default one that gathers a
 * connection's WAL writes and issues them in few system calls.
 *
 * SQLite writes each WAL frame with two calls (its 24-byte header, then its
 * page), and a frame straddles two pages of the file: at everyday rates a
 * commit of ~120 messages is ~200 such calls and three kernel page updates
 * per frame (docs/performance.md item 46). Through this VFS the frames of a
 * commit are copied into a buffer and written when the commit syncs the WAL,
 * or when the buffer is full: one call per 64 KB.
 *
 * For the writer connection only, and only with synchronous=FULL: the
 * buffer must be empty whenever another connection may read the WAL, and
 * that holds only if every commit syncs the WAL before it becomes visible
 * (see store_sqlite_walbuf.c). Every other file passes straight through.
 *
 * Threading: an instance serves one connection, used by one thread at a time.
 */
#ifndef SP_COLLECTOR_STORE_SQLITE_WALBUF_H
#define SP_COLLECTOR_STORE_SQLITE_WALBUF_H

#include <stddef.h>
#include <stdint.h>

struct walbuf;

/*
 * Registers a VFS of a name unique to this instance over SQLite's default
 * VFS, with a buffer of buffer_bytes (allocated at the first WAL write).
 * NULL on no memory or a failed registration.
 */
struct walbuf *walbuf_create(size_t buffer_bytes);

/* The name to give sqlite3_open_v2. */
const char *walbuf_vfs_name(const struct walbuf *w);

/* Unregisters the VFS and frees it; the connection using it must be closed. */
void walbuf_destroy(struct walbuf *w);

struct walbuf_stats {
	uint64_t wal_writes;    /* xWrite calls SQLite made on the WAL */
	uint64_t file_writes;   /* writes this VFS issued to the WAL file for them */
};

void walbuf_stats(const struct walbuf *w, struct walbuf_stats *out);

#endif
