/*
 * store_sqlite_walbuf.c - see store_sqlite_walbuf.h.
 *
 * The one rule: the buffer holds WAL bytes no other connection may need.
 * Other connections (the API's readers, the mailer's and city's, a sqlite3
 * shell) read the WAL through their own descriptors, and only frames up to
 * the last commit recorded in the shared WAL index. SQLite records a commit
 * there after it wrote the commit's frames and, with synchronous=FULL, after
 * it synced the WAL: our xSync writes the buffer first, so every committed
 * frame is in the file before anyone can look for it. What else a buffer
 * may hold are frames of the transaction in progress (pages spilled from a
 * full page cache), which only this connection reads (our xRead writes the
 * buffer first); if that transaction rolls back instead, SQLite releases the
 * WAL's write lock and the next writer, maybe another connection, writes
 * its frames over those places. So every unlock on the database file's
 * shared memory (how SQLite releases the WAL's locks) writes the buffer
 * first, as SQLite itself would have written those frames at once. With
 * synchronous=NORMAL commits are not synced and this VFS must not be used.
 *
 * Writes are gathered while they continue the buffer (frames are appended);
 * a write inside the buffered range (SQLite rewriting a frame of the same
 * transaction) is copied into it; any other write, a read, sync, truncate,
 * size or file-control call on the WAL writes the buffer first, so the file
 * always receives the same bytes in the same order as without the buffer.
 * A failed write of the buffer drops it and returns the error, which fails
 * the transaction as the failed write itself would have.
 *
 * One instance serves one connection: one main database file and its WAL.
 * SQLite's registry of VFSes is process-wide; each instance registers under
 * a name of its own and unregisters when destroyed.
 */
#include "store_sqlite_walbuf.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct walbuf {
	sqlite3_vfs vfs;              /* ours; pAppData points back here */
	sqlite3_vfs *base;            /* the default VFS, which does the I/O */
	char name[48];
	size_t cap;
	struct wb_file *main_db;      /* the main database file open through us, if any */
	struct wb_file *wal;          /* its WAL, if open */
	uint64_t wal_writes, file_writes;
};

/* A file opened through us; the base VFS's own file follows it in memory. */
struct wb_file {
	sqlite3_file head;            /* pMethods: wal_methods or pass_methods */
	struct walbuf *owner;
	sqlite3_file *real;
	char *buf;                    /* WAL only: bytes not yet written, for [off, off + len) */
	size_t len;
	sqlite3_int64 off;
};

#define REAL(f) (((struct wb_file *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

/*
 * The most one write hands the base VFS: SQLite's unix VFS takes writes
 * shorter than 128 KB (it masks the length to 17 bits; a longer write ends
 * in SQLITE_FULL), and 64 KB, its largest page, is the most SQLite itself
 * hands it.
 */
#define WRITE_MAX 65536

/* Writes the buffer out (and empties it, also on failure). */
static int wal_flush(struct wb_file *p)
{
	int rc = SQLITE_OK;
	for (size_t done = 0; done < p->len && rc == SQLITE_OK; done += WRITE_MAX) {
		size_t n = p->len - done < WRITE_MAX ? p->len - done : WRITE_MAX;
		rc = p->real->pMethods->xWrite(p->real, p->buf + done, (int)n,
					       p->off + (sqlite3_int64)done);
		p->owner->file_writes++;
	}
	p->len = 0;
	return rc;
}

/* ---------------------------------------------------------------- the WAL file */

static int wal_close(sqlite3_file *f)
{
	struct wb_file *p = (struct wb_file *)f;
	int rc = wal_flush(p);
	int rc2 = RM(f)->xClose(p->real);
	free(p->buf);
	p->buf = NULL;
	if (p->owner->wal == p)
		p->owner->wal = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *data, int n, sqlite3_int64 off)
{
	struct wb_file *p = (struct wb_file *)f;
	if (p->len && off < p->off + (sqlite3_int64)p->len && off + n > p->off) {
		int rc = wal_flush(p);
		if (rc != SQLITE_OK)
			return rc;
	}
	return RM(f)->xRead(p->real, data, n, off);
}

static int wal_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
	struct wb_file *p = (struct wb_file *)f;
	struct walbuf *w = p->owner;
	sqlite3_int64 end = p->off + (sqlite3_int64)p->len;
	int rc;

	w->wal_writes++;
	if (p->len && off >= p->off && off + n <= end) { /* a frame rewritten: in place */
		memcpy(p->buf + (off - p->off), data, (size_t)n);
		return SQLITE_OK;
	}
	if (p->len && (off != end || p->len + (size_t)n > w->cap) && (rc = wal_flush(p)) != SQLITE_OK)
		return rc;
	if (p->buf == NULL && (size_t)n <= w->cap)
		p->buf = malloc(w->cap);
	if (p->buf == NULL || (size_t)n > w->cap) { /* no memory, or too big to gather: at once */
		w->file_writes++;
		return RM(f)->xWrite(p->real, data, n, off);
	}
	if (p->len == 0)
		p->off = off;
	memcpy(p->buf + p->len, data, (size_t)n);
	p->len += (size_t)n;
	return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	int rc = wal_flush((struct wb_file *)f);
	return rc != SQLITE_OK ? rc : RM(f)->xTruncate(REAL(f), size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
	int rc = wal_flush((struct wb_file *)f);
	return rc != SQLITE_OK ? rc : RM(f)->xSync(REAL(f), flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	int rc = wal_flush((struct wb_file *)f);
	return rc != SQLITE_OK ? rc : RM(f)->xFileSize(REAL(f), size);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
	int rc = wal_flush((struct wb_file *)f);
	return rc != SQLITE_OK ? rc : RM(f)->xFileControl(REAL(f), op, arg);
}

static int wal_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	int rc = wal_flush((struct wb_file *)f);
	return rc != SQLITE_OK ? rc : RM(f)->xFetch(REAL(f), off, n, pp);
}

/* ---------------------------------------------------------------- passed through */

static int pass_close(sqlite3_file *f)
{
	struct wb_file *p = (struct wb_file *)f;
	if (p->owner->main_db == p)
		p->owner->main_db = NULL;
	return RM(f)->xClose(p->real);
}

static int pass_read(sqlite3_file *f, void *data, int n, sqlite3_int64 off)
{
	return RM(f)->xRead(REAL(f), data, n, off);
}

static int pass_write(sqlite3_file *f, const void *data, int n, sqlite3_int64 off)
{
	return RM(f)->xWrite(REAL(f), data, n, off);
}

static int pass_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return RM(f)->xTruncate(REAL(f), size);
}

static int pass_sync(sqlite3_file *f, int flags)
{
	return RM(f)->xSync(REAL(f), flags);
}

static int pass_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return RM(f)->xFileSize(REAL(f), size);
}

static int pass_file_control(sqlite3_file *f, int op, void *arg)
{
	return RM(f)->xFileControl(REAL(f), op, arg);
}

static int pass_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return RM(f)->xFetch(REAL(f), off, n, pp);
}

/* The WAL's buffer, written before a lock on the main file's shared memory goes (see the top). */
static void flush_before_unlock(struct wb_file *p)
{
	struct walbuf *w = p->owner;
	/*
	 * A failure drops the buffer: at an unlock it holds at most frames of a
	 * transaction that rolled back, which no one will read.
	 */
	if (w->main_db == p && w->wal)
		(void)wal_flush(w->wal);
}

static int pass_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	if (flags & SQLITE_SHM_UNLOCK)
		flush_before_unlock((struct wb_file *)f);
	return RM(f)->xShmLock(REAL(f), offset, n, flags);
}

static int pass_shm_unmap(sqlite3_file *f, int delete_flag)
{
	flush_before_unlock((struct wb_file *)f);
	return RM(f)->xShmUnmap(REAL(f), delete_flag);
}

/* Methods that are the same for both kinds of file. */
static int any_lock(sqlite3_file *f, int level)
{
	return RM(f)->xLock(REAL(f), level);
}

static int any_unlock(sqlite3_file *f, int level)
{
	return RM(f)->xUnlock(REAL(f), level);
}

static int any_check_reserved(sqlite3_file *f, int *out)
{
	return RM(f)->xCheckReservedLock(REAL(f), out);
}

static int any_sector_size(sqlite3_file *f)
{
	return RM(f)->xSectorSize(REAL(f));
}

static int any_device_characteristics(sqlite3_file *f)
{
	return RM(f)->xDeviceCharacteristics(REAL(f));
}

static int any_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
	return RM(f)->xShmMap(REAL(f), region, size, extend, pp);
}

static void any_shm_barrier(sqlite3_file *f)
{
	RM(f)->xShmBarrier(REAL(f));
}

static int any_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return RM(f)->xUnfetch(REAL(f), off, p);
}

static int any_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return RM(f)->xShmLock(REAL(f), offset, n, flags);
}

static int any_shm_unmap(sqlite3_file *f, int delete_flag)
{
	return RM(f)->xShmUnmap(REAL(f), delete_flag);
}

/* version 3: the default VFS's files have shared memory and memory mapping (checked at open) */
static const sqlite3_io_methods wal_methods = {
	.iVersion = 3,
	.xClose = wal_close,
	.xRead = wal_read,
	.xWrite = wal_write,
	.xTruncate = wal_truncate,
	.xSync = wal_sync,
	.xFileSize = wal_file_size,
	.xLock = any_lock,
	.xUnlock = any_unlock,
	.xCheckReservedLock = any_check_reserved,
	.xFileControl = wal_file_control,
	.xSectorSize = any_sector_size,
	.xDeviceCharacteristics = any_device_characteristics,
	.xShmMap = any_shm_map,
	.xShmLock = any_shm_lock,
	.xShmBarrier = any_shm_barrier,
	.xShmUnmap = any_shm_unmap,
	.xFetch = wal_fetch,
	.xUnfetch = any_unfetch,
};

static const sqlite3_io_methods pass_methods = {
	.iVersion = 3,
	.xClose = pass_close,
	.xRead = pass_read,
	.xWrite = pass_write,
	.xTruncate = pass_truncate,
	.xSync = pass_sync,
	.xFileSize = pass_file_size,
	.xLock = any_lock,
	.xUnlock = any_unlock,
	.xCheckReservedLock = any_check_reserved,
	.xFileControl = pass_file_control,
	.xSectorSize = any_sector_size,
	.xDeviceCharacteristics = any_device_characteristics,
	.xShmMap = any_shm_map,
	.xShmLock = pass_shm_lock,
	.xShmBarrier = any_shm_barrier,
	.xShmUnmap = pass_shm_unmap,
	.xFetch = pass_fetch,
	.xUnfetch = any_unfetch,
};

/* ---------------------------------------------------------------- the VFS */

#define BASE(v) (((struct walbuf *)(v)->pAppData)->base)

static int vfs_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct walbuf *w = v->pAppData;
	struct wb_file *p = (struct wb_file *)f;
	bool is_wal = (flags & SQLITE_OPEN_WAL) != 0, is_main = (flags & SQLITE_OPEN_MAIN_DB) != 0;

	memset(p, 0, sizeof(*p));
	p->owner = w;
	p->real = (sqlite3_file *)(p + 1);
	/* one connection: one main file and one WAL at a time (see the top) */
	if ((is_wal && w->wal) || (is_main && w->main_db))
		return SQLITE_CANTOPEN;
	int rc = w->base->xOpen(w->base, name, p->real, flags, out_flags);
	if (rc != SQLITE_OK)
		return rc; /* head.pMethods stays NULL: SQLite will not close it */
	if (p->real->pMethods == NULL || p->real->pMethods->iVersion < 3) {
		if (p->real->pMethods)
			p->real->pMethods->xClose(p->real);
		return SQLITE_CANTOPEN;
	}
	p->head.pMethods = is_wal ? &wal_methods : &pass_methods;
	if (is_wal)
		w->wal = p;
	else if (is_main)
		w->main_db = p;
	return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	return BASE(v)->xDelete(BASE(v), name, sync_dir);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	return BASE(v)->xAccess(BASE(v), name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	return BASE(v)->xFullPathname(BASE(v), name, n, out);
}

static void *vfs_dl_open(sqlite3_vfs *v, const char *name)
{
	return BASE(v)->xDlOpen(BASE(v), name);
}

static void vfs_dl_error(sqlite3_vfs *v, int n, char *out)
{
	BASE(v)->xDlError(BASE(v), n, out);
}

static void (*vfs_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	return BASE(v)->xDlSym(BASE(v), h, sym);
}

static void vfs_dl_close(sqlite3_vfs *v, void *h)
{
	BASE(v)->xDlClose(BASE(v), h);
}

static int vfs_randomness(sqlite3_vfs *v, int n, char *out)
{
	return BASE(v)->xRandomness(BASE(v), n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int us)
{
	return BASE(v)->xSleep(BASE(v), us);
}

static int vfs_current_time(sqlite3_vfs *v, double *out)
{
	return BASE(v)->xCurrentTime(BASE(v), out);
}

static int vfs_last_error(sqlite3_vfs *v, int n, char *out)
{
	return BASE(v)->xGetLastError(BASE(v), n, out);
}

static int vfs_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	return BASE(v)->xCurrentTimeInt64(BASE(v), out);
}

static int vfs_set_system_call(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr fn)
{
	return BASE(v)->xSetSystemCall(BASE(v), name, fn);
}

static sqlite3_syscall_ptr vfs_get_system_call(sqlite3_vfs *v, const char *name)
{
	return BASE(v)->xGetSystemCall(BASE(v), name);
}

static const char *vfs_next_system_call(sqlite3_vfs *v, const char *name)
{
	return BASE(v)->xNextSystemCall(BASE(v), name);
}

struct walbuf *walbuf_create(size_t buffer_bytes)
{
	sqlite3_vfs *base = sqlite3_vfs_find(NULL);
	/* the methods below call the base's version-3 functions; every SQLite 3.7.6+ unix VFS has them */
	if (base == NULL || base->iVersion < 3 || buffer_bytes == 0 || buffer_bytes > (1u << 30))
		return NULL;
	struct walbuf *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->base = base;
	w->cap = buffer_bytes;
	snprintf(w->name, sizeof(w->name), "sitepulse-walbuf-%p", (void *)w);
	w->vfs = (sqlite3_vfs){
		.iVersion = 3,
		.szOsFile = (int)sizeof(struct wb_file) + base->szOsFile,
		.mxPathname = base->mxPathname,
		.zName = w->name,
		.pAppData = w,
		.xOpen = vfs_open,
		.xDelete = vfs_delete,
		.xAccess = vfs_access,
		.xFullPathname = vfs_full_pathname,
		.xDlOpen = vfs_dl_open,
		.xDlError = vfs_dl_error,
		.xDlSym = vfs_dl_sym,
		.xDlClose = vfs_dl_close,
		.xRandomness = vfs_randomness,
		.xSleep = vfs_sleep,
		.xCurrentTime = vfs_current_time,
		.xGetLastError = vfs_last_error,
		.xCurrentTimeInt64 = vfs_current_time_int64,
		.xSetSystemCall = vfs_set_system_call,
		.xGetSystemCall = vfs_get_system_call,
		.xNextSystemCall = vfs_next_system_call,
	};
	if (sqlite3_vfs_register(&w->vfs, 0) != SQLITE_OK) {
		free(w);
		return NULL;
	}
	return w;
}

const char *walbuf_vfs_name(const struct walbuf *w)
{
	return w->name;
}

void walbuf_destroy(struct walbuf *w)
{
	if (w == NULL)
		return;
	sqlite3_vfs_unregister(&w->vfs);
	free(w);
}

void walbuf_stats(const struct walbuf *w, struct walbuf_stats *out)
{
	out->wal_writes = w->wal_writes;
	out->file_writes = w->file_writes;
}
