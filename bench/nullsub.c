/*
 * nullsub.c - sp-nullsub: the cost of receiving alone. A QoS 1 subscriber
 * through sitepulse's Paho wrapper (the collector's receive path) whose
 * callback only counts. Prints messages/s and CPU microseconds per message
 * between the first and the N-th message, so the collector's own cost can
 * be told apart from the MQTT library's (docs/performance.md).
 *
 *   sp-nullsub URI COUNT [TOPIC]     (TOPIC default sp/v1/+/+/data)
 */
#include "sitepulse/clock.h"
#include "sitepulse/mqtt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static atomic_long received;

static void on_message(void *ctx, const char *topic, size_t topic_len, const void *payload,
		       size_t len)
{
	(void)ctx;
	(void)topic;
	(void)topic_len;
	(void)payload;
	(void)len;
	atomic_fetch_add(&received, 1);
}

static double cpu_seconds(void)
{
	struct rusage r;
	getrusage(RUSAGE_SELF, &r);
	return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
	       (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: sp-nullsub URI COUNT [TOPIC]\n");
		return 2;
	}
	long want = strtol(argv[2], NULL, 10);
	struct sp_mqtt_params p = {.uri = argv[1], .client_id = "sp-nullsub", .keepalive_s = 30,
				   .clean_session = true, .max_inflight = 100};
	struct sp_mqtt_callbacks cb = {NULL, on_message, NULL, NULL};
	struct sp_mqtt *m = sp_mqtt_create(&p, &cb);
	if (m == NULL || want <= 0)
		return 1;
	int64_t deadline = sp_mono_ms() + 10000;
	while (!sp_mqtt_connected(m) && sp_mono_ms() < deadline) {
		sp_mqtt_poll(m);
		sp_sleep_ms(10);
	}
	if (sp_mqtt_subscribe(m, argc > 3 ? argv[3] : "sp/v1/+/+/data", 1) != 0)
		return 1;
	fprintf(stderr, "sp-nullsub: subscribed, waiting for %ld messages\n", want);
	deadline = sp_mono_ms() + 600000;
	while (atomic_load(&received) == 0 && sp_mono_ms() < deadline)
		sp_sleep_ms(1);
	double c0 = cpu_seconds();
	int64_t t0 = sp_mono_ms();
	while (atomic_load(&received) < want && sp_mono_ms() < deadline)
		sp_sleep_ms(1);
	int64_t t1 = sp_mono_ms();
	double c1 = cpu_seconds();
	long n = atomic_load(&received);
	printf("{\"messages\":%ld,\"elapsed_ms\":%lld,\"msg_per_s\":%.0f,\"cpu_us_per_msg\":%.2f}\n", n,
	       (long long)(t1 - t0), t1 > t0 ? n * 1000.0 / (double)(t1 - t0) : 0.0,
	       n ? (c1 - c0) * 1e6 / (double)n : 0.0);
	sp_mqtt_destroy(m, 1000);
	return n >= want ? 0 : 1;
}
