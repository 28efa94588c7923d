/* ingest.c - MQTT receive and ack publish for the collector (see ingest.h). */
#include "ingest.h"

#include "sitepulse/buf.h"
#include "sitepulse/clock.h"
#include "sitepulse/codec.h"
#include "sitepulse/error.h"
#include "sitepulse/log.h"
#include "sitepulse/mqtt.h"
#include "sitepulse/topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FILTERS[] = {"sp/v1/+/+/birth", "sp/v1/+/+/data", "sp/v1/+/+/state"};

struct ingest {
	struct sp_mqtt *mqtt;
	struct queue *queue;
	struct metrics *metrics;
	uint64_t subscribed_epoch; /* main thread */
	/* Paho thread: rate limit for oversized-message logs */
	struct sp_ratelimit oversize_log;
	/* writer thread: ack payload scratch */
	struct sp_buf ack;
};

/* Paho receive thread: copy and enqueue, nothing more. */
static void on_message(void *ctx, const char *topic, size_t topic_len, const void *payload,
		       size_t len)
{
	struct ingest *in = ctx;
	int64_t now = sp_now_ms();
	atomic_fetch_add(&in->metrics->messages_received, 1);
	if (len > SP_PAYLOAD_MAX || topic_len >= SP_TOPIC_MAX * 4) {
		/* never copied: counted and logged (rate-limited) here */
		uint64_t suppressed;
		atomic_fetch_add(&in->metrics->messages_rejected[SP_REJ_TOO_LARGE], 1);
		if (sp_ratelimit_allow(&in->oversize_log, sp_mono_ms(), 5, 10000, &suppressed))
			SP_WARN("ingest", "rejected %zu-byte message on %.*s: too_large (limit %d)%s",
				len, (int)(topic_len > 200 ? 200 : topic_len), topic, SP_PAYLOAD_MAX,
				suppressed ? " (similar messages were suppressed)" : "");
		return;
	}
	if (queue_push(in->queue, topic, topic_len, payload, len, now) == SP_ECLOSED)
		SP_DEBUG("ingest", "shutting down: message on %s left to the broker", topic);
}

struct ingest *ingest_create(const struct collector_conf *conf, struct queue *q,
			     struct metrics *m)
{
	struct ingest *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return NULL;
	in->queue = q;
	in->metrics = m;
	in->ack.limit = 256;
	struct sp_mqtt_params p = {
		.uri = conf->mqtt.uri,
		.client_id = conf->mqtt.client_id,
		.username = conf->mqtt.username,
		.password = conf->mqtt.password,
		.ca_file = conf->mqtt.ca_file,
		.cert_file = conf->mqtt.cert_file,
		.key_file = conf->mqtt.key_file,
		.tls_insecure = conf->mqtt.tls_insecure,
		.keepalive_s = (int)conf->mqtt.keepalive_s,
		/* persistent session: what arrives while we are away waits in the broker */
		.clean_session = false,
		.max_inflight = (int)conf->mqtt.max_inflight,
	};
	struct sp_mqtt_callbacks cb = {in, on_message, NULL, NULL};
	in->mqtt = sp_mqtt_create(&p, &cb);
	if (in->mqtt == NULL) {
		free(in);
		return NULL;
	}
	return in;
}

void ingest_poll(struct ingest *in)
{
	sp_mqtt_poll(in->mqtt);
	bool up = sp_mqtt_connected(in->mqtt);
	atomic_store(&in->metrics->mqtt_connected, up);
	uint64_t epoch = sp_mqtt_epoch(in->mqtt);
	if (!up || epoch == in->subscribed_epoch)
		return;
	/* the session keeps subscriptions, but a broker without persistence forgets them */
	int rc = 0;
	for (size_t i = 0; i < sizeof(FILTERS) / sizeof(FILTERS[0]); i++)
		rc |= sp_mqtt_subscribe(in->mqtt, FILTERS[i], 1);
	if (rc == 0) {
		in->subscribed_epoch = epoch;
		SP_INFO("ingest", "subscribed to sp/v1/+/+/{birth,data,state}");
	}
}

bool ingest_connected(const struct ingest *in)
{
	return sp_mqtt_connected(in->mqtt);
}

uint64_t ingest_epoch(const struct ingest *in)
{
	return sp_mqtt_epoch(in->mqtt);
}

int ingest_publish_ack(struct ingest *in, const char *site, const char *agent, int64_t seq,
		       int64_t now_ms)
{
	char topic[SP_TOPIC_MAX];
	if (sp_topic_format(topic, sizeof(topic), site, agent, SP_TOPIC_ACK))
		return SP_EINVAL;
	sp_buf_reset(&in->ack);
	if (sp_encode_ack(&in->ack, seq, now_ms))
		return SP_ENOMEM;
	int rc = sp_mqtt_publish(in->mqtt, topic, in->ack.data, in->ack.len, 1, true);
	if (rc == 0)
		atomic_fetch_add(&in->metrics->acks_published, 1);
	return rc;
}

void ingest_destroy(struct ingest *in)
{
	if (in == NULL)
		return;
	sp_mqtt_destroy(in->mqtt, 2000);
	sp_buf_free(&in->ack);
	free(in);
}
