/*
 * tz.h - local time of an IANA time zone (Asia/Shanghai, ...) for people:
 * the offset from UTC at an instant, read from the system's zoneinfo
 * (TZif files under /usr/share/zoneinfo), without touching the process's
 * TZ or localtime (not thread-safe).
 *
 * A struct sp_tz is immutable after loading: any thread may use it.
 */
#ifndef SP_TZ_H
#define SP_TZ_H

#include <stddef.h>
#include <stdint.h>

struct sp_tz;

/* Room sp_tz_format needs for any instant of years 0-9999 ("...+HH:MM" and the NUL). */
#define SP_TZ_FMT_MAX 32

/*
 * Loads zone `name` (e.g. "Asia/Shanghai") from /usr/share/zoneinfo/NAME.
 * The name must be relative, without "..", of [A-Za-z0-9/_+-] only. NULL if
 * the name is refused, or the file is unknown, unreadable, larger than 1 MB,
 * malformed, or a leap-second ("right/...") zone (name and reason are then
 * logged). Free with sp_tz_free.
 */
struct sp_tz *sp_tz_load(const char *name);

/*
 * For tests and fuzzing: the same from any file path (logged like
 * sp_tz_load), or from len bytes of TZif data in memory (nothing logged).
 * `name` is what sp_tz_name reports (copied).
 */
struct sp_tz *sp_tz_load_file(const char *path, const char *name);
struct sp_tz *sp_tz_parse(const void *data, size_t len, const char *name);

/* NULL ok. */
void sp_tz_free(struct sp_tz *tz);

/* The zone's name as given to sp_tz_load ("Asia/Shanghai"); "UTC" for NULL. Lives as long as tz. */
const char *sp_tz_name(const struct sp_tz *tz);

/* Seconds east of UTC at t_ms (ms since the epoch); 0 for tz NULL. */
int32_t sp_tz_offset(const struct sp_tz *tz, int64_t t_ms);

/*
 * Writes t_ms (whole seconds, rounded down) as ISO 8601 local time with
 * its offset, e.g. "2026-11-28T17:33:20+08:00" (tz NULL: UTC, "...Z").
 * An offset with seconds (local mean time before ~1900) is shown truncated
 * to whole minutes, and the local time with it, so the text still names the
 * exact instant. Truncated to cap - 1 bytes if cap is short (SP_TZ_FMT_MAX
 * is always enough for years 0-9999). Returns out.
 */
char *sp_tz_format(const struct sp_tz *tz, int64_t t_ms, char *out, size_t cap);

#endif
