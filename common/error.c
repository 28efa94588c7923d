/* error.c - texts for the SP_E* codes of error.h. */
#include "sitepulse/error.h"

const char *sp_strerror(int err)
{
	switch (err) {
	case SP_OK: return "success";
	case SP_ENOMEM: return "out of memory";
	case SP_EINVAL: return "invalid argument";
	case SP_EIO: return "I/O error";
	case SP_EFULL: return "queue or store full";
	case SP_ENOTFOUND: return "not found";
	case SP_EEXIST: return "already exists";
	case SP_ECONN: return "not connected";
	case SP_ETIMEDOUT: return "timed out";
	case SP_ECLOSED: return "shutting down";
	case SP_ENOSPC: return "no space left on device";
	case SP_ECONFIG: return "bad configuration";
	case SP_ETOOBIG: return "size limit exceeded";
	case SP_EBUSY: return "busy";
	}
	return "unknown error";
}
