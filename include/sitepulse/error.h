/*
 * error.h - the one error convention of sitepulse.
 *
 * Functions return int: 0 on success, a negative SP_E* code on failure.
 * Constructors return NULL on failure. Library codes (Paho, SQLite, curl)
 * are translated inside their wrapper module, which also logs the
 * library's own text; callers pass the code up without logging again.
 */
#ifndef SP_ERROR_H
#define SP_ERROR_H

enum sp_err {
	SP_OK = 0,
	SP_ENOMEM = -1,     /* allocation failed */
	SP_EINVAL = -2,     /* invalid argument or input */
	SP_EIO = -3,        /* file or database I/O failed */
	SP_EFULL = -4,      /* a bounded queue or store is full */
	SP_ENOTFOUND = -5,  /* no such object */
	SP_EEXIST = -6,     /* already exists / duplicate */
	SP_ECONN = -7,      /* not connected / network failure */
	SP_ETIMEDOUT = -8,  /* deadline passed */
	SP_ECLOSED = -9,    /* the object is shutting down */
	SP_ENOSPC = -10,    /* disk full */
	SP_ECONFIG = -11,   /* bad configuration */
	SP_ETOOBIG = -12,   /* a size limit was exceeded */
	SP_EBUSY = -13,     /* resource busy, try again */
};

/* Returns a static, human-readable text for an SP_E* code. Never NULL. */
const char *sp_strerror(int err);

#endif
