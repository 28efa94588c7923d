/*
 * log.h - levelled, component-prefixed logging to stderr (journald reads it).
 *
 * ERROR: an operator must act.  WARN: degraded but recovering.
 * INFO: lifecycle (start, connect, overflow begins/ends).  DEBUG: per message.
 *
 * The threshold is the one process-wide setting of the logger: set it once
 * at start-up with sp_log_set_level(), before any thread is created. Each
 * line is formatted into a local buffer and written with a single write(2),
 * so lines from different threads never interleave. Never log secrets.
 */
#ifndef SP_LOG_H
#define SP_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum sp_log_level { SP_LOG_ERROR = 0, SP_LOG_WARN, SP_LOG_INFO, SP_LOG_DEBUG };

void sp_log_set_level(enum sp_log_level level);
bool sp_log_enabled(enum sp_log_level level);

/* Parses "error", "warn", "info" or "debug". Returns 0 or SP_EINVAL. */
int sp_log_level_parse(const char *text, enum sp_log_level *out);

void sp_log(enum sp_log_level level, const char *component, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define SP_ERROR(comp, ...) sp_log(SP_LOG_ERROR, comp, __VA_ARGS__)
#define SP_WARN(comp, ...) sp_log(SP_LOG_WARN, comp, __VA_ARGS__)
#define SP_INFO(comp, ...) sp_log(SP_LOG_INFO, comp, __VA_ARGS__)
#define SP_DEBUG(comp, ...)                                                    \
	do {                                                                   \
		if (sp_log_enabled(SP_LOG_DEBUG))                              \
			sp_log(SP_LOG_DEBUG, comp, __VA_ARGS__);               \
	} while (0)

/*
 * Rate limit for repeated log lines: at most `burst` lines per window.
 * One struct per call site, owned by the module that logs (not shared
 * between threads unless the owner locks it).
 */
struct sp_ratelimit {
	int64_t window_start_ms;
	uint32_t in_window;
	uint64_t suppressed;
};

/*
 * Returns true when this occurrence may be logged. When a new window opens
 * after lines were suppressed, *suppressed_out receives their number (else 0)
 * so the caller can say "(N similar suppressed)".
 */
bool sp_ratelimit_allow(struct sp_ratelimit *rl, int64_t now_ms, uint32_t burst,
			int64_t window_ms, uint64_t *suppressed_out);

#endif
