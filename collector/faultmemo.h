/*
 * faultmemo.h - the newest clear of each fault the alert rules have seen,
 * so that a late raise of a fault already cleared does not open an alert.
 *
 * A device's fault record is an explicit raise or clear, and the rules
 * honour one even when it arrives late (resent behind newer messages of its
 * agent). But a clear leaves nothing behind once its condition is gone: a
 * raise lost in transit and resent after its own clear went through would
 * open an alert that no clear will ever end. The rules note every clear
 * here, per (device, port, code), with its device time; a late raise at or
 * before that time is over already and is ignored.
 *
 * Bounded: at most `max` faults are remembered, the one noted longest ago
 * forgotten first, unless it was noted again since (then it is kept once
 * more); a late raise older than a forgotten clear opens its alert as
 * before. The writer keeps the clears in the store as well and notes them
 * here again at start (store_w_load_fault_clears), so a restart forgets
 * nothing (docs/alerts.md).
 *
 * Pure; owned by the rules (the writer thread).
 */
#ifndef SP_COLLECTOR_FAULTMEMO_H
#define SP_COLLECTOR_FAULTMEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct faultmemo;

/* Remembers at most max faults (>= 1). NULL on no memory. */
struct faultmemo *faultmemo_create(size_t max);
void faultmemo_destroy(struct faultmemo *m);

/* Notes that fault `code` of device_id (port 0: none) was cleared at device time ts. */
void faultmemo_note_clear(struct faultmemo *m, int64_t device_id, int32_t port,
			  const char *code, int64_t ts);

/* Whether that fault was cleared at or after device time ts, as far as remembered. */
bool faultmemo_cleared_since(const struct faultmemo *m, int64_t device_id, int32_t port,
			     const char *code, int64_t ts);

/* The faults remembered now. */
size_t faultmemo_count(const struct faultmemo *m);

#endif
