/*
 * offline.h - the offline alerts (docs/alerts.md; DOMAIN N01/N02):
 *
 *   gateway.offline  an agent whose connection ended (its last will, or a
 *                    stop) or that sent nothing for device_offline_s since
 *                    its last data or its (re)connect, whichever is later,
 *                    for the rule's hold_s (default 60 s: an agent's restart
 *                    passes unalerted). One alert per gateway, dev = the
 *                    agent's id: a site going dark is one alert, not one
 *                    per lift and charger.
 *   lift.offline,    a device no reading of which arrived for
 *   charger.offline  device_offline_s (and hold_s) while its gateway is up
 *                    and has been for device_offline_s (unless the device
 *                    was silent that long before the gateway's last drop
 *                    began: its spool cannot hold a reading of it): a lift
 *                    terminal or charger lost behind a working gateway.
 *
 * They are made of silence, so no record can open them: the writer sweeps
 * the store for them (store_w_offline_scan) with each flush of the devices'
 * liveness, inside its batch transaction, and hands the events to the
 * same rule_event_fn as the record rules (alert, mail, log). The state is
 * the store's alone. Offline is the API's (docs/protocol.md), and every
 * time is the collector's clock: when a gateway's messages and a device's
 * readings arrived (its heard), never the ts a device put on them, so a
 * device whose clock runs behind or ahead is judged like any other. A
 * gateway alert clears at the first sweep that sees it up; a device alert
 * at the first sweep after a reading of it arrived, at that arrival.
 * Clear events carry the rule's severity too.
 *
 * The writer runs a sweep only once the broker connection has been up for
 * device_offline_s and no backlog waits in the queues, so a collector that
 * was itself cut off (and is replaying what it missed) alerts nobody.
 *
 * offline_judge_* are pure. Threading: the writer's thread.
 */
#ifndef SP_COLLECTOR_OFFLINE_H
#define SP_COLLECTOR_OFFLINE_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"
#include "store.h"

#define OFFLINE_DETAIL_MAX 256

/*
 * What to do about one gateway / one device at now_ms: 1 with *ev filled
 * (RULE_OPEN: rule, site, dev, severity, since, ts, detail written into
 * detail[OFFLINE_DETAIL_MAX]; RULE_CLEAR: alert_id, ts), or 0.
 */
int offline_judge_gateway(const struct store_offline_agent *a, const struct rules_config *cfg,
			  int64_t offline_ms, int64_t now_ms, struct rule_event *ev, char *detail);
int offline_judge_device(const struct store_offline_device *d, const struct rules_config *cfg,
			 int64_t offline_ms, int64_t now_ms, struct rule_event *ev, char *detail);

/* The offline rules' names, for the store (store_w_clock_set_back). */
struct store_offline_rules offline_rules(void);

/* One sweep over the store (see above); events go to fn. 0, fn's error or SP_E*. */
int offline_sweep(struct store *s, const struct rules_config *cfg, int64_t offline_ms,
		  int64_t now_ms, rule_event_fn fn, void *ctx);

#endif
