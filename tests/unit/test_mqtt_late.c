/*
 * test_mqtt_late.c - a connect that completes after sp_mqtt_disconnect
 * returned brings nothing up: mqtt.h promises that no callback runs once
 * that call returns (the collector closes its ingest queue right after it).
 *
 * A fake broker on loopback reads the client's CONNECT and answers only
 * when told to: sp_mqtt_disconnect gives up waiting for the connect after
 * timeout_ms + 1 s, while Paho's own connect timeout (10 s) keeps the
 * attempt going. Then the broker sends CONNACK and one QoS 1 PUBLISH, as a
 * broker holding a persistent session does at once. The client must not
 * report the connection (connected callback, sp_mqtt_connected), must not
 * deliver the message, and must close the connection at once.
 * Before the fix the late CONNACK brought the connection up: connected
 * callback, the message delivered to a caller that had stopped, and the
 * connection kept open. And a delivery under way is waited for a bounded
 * time only (test_blocked_delivery_bounded).
 */
#include "harness.h"

#include "sitepulse/clock.h"
#include "sitepulse/mqtt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

static atomic_int connected_calls, messages;
static atomic_int connect_seen; /* the broker has read the CONNECT */
static atomic_int answer;       /* the test lets the broker answer */
static atomic_int closed;       /* the client closed the connection after the answer */

static atomic_int block_delivery; /* on_message waits for release (bounded) */
static atomic_int release, delivering;

static void on_message(void *ctx, const char *topic, size_t topic_len, const void *payload,
		       size_t len)
{
	(void)ctx, (void)topic, (void)topic_len, (void)payload, (void)len;
	atomic_fetch_add(&messages, 1);
	atomic_store(&delivering, 1);
	/* as the collector's ingest waiting for room in a queue nobody drains */
	for (int i = 0; i < 1000 && atomic_load(&block_delivery) && !atomic_load(&release); i++)
		usleep(10 * 1000);
	atomic_store(&delivering, 0);
}

static void on_connected(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&connected_calls, 1);
}

/* Reads up to len bytes within ms; the count, 0 at EOF, -1 on timeout or error. */
static ssize_t read_within(int fd, void *buf, size_t len, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	if (poll(&p, 1, ms) <= 0)
		return -1;
	return recv(fd, buf, len, 0);
}

/* Reads one whole MQTT packet (fixed header, remaining length, body). 0 or -1. */
static int read_packet(int fd, int ms)
{
	unsigned char b;
	size_t rl = 0, mult = 1;
	if (read_within(fd, &b, 1, ms) != 1)
		return -1;
	do {
		if (read_within(fd, &b, 1, ms) != 1)
			return -1;
		rl += (b & 127) * mult;
		mult *= 128;
	} while (b & 128);
	while (rl > 0) {
		char body[256];
		ssize_t n = read_within(fd, body, rl < sizeof(body) ? rl : sizeof(body), ms);
		if (n <= 0)
			return -1;
		rl -= (size_t)n;
	}
	return 0;
}

static void *broker_main(void *arg)
{
	int ls = *(int *)arg;
	struct pollfd p = {ls, POLLIN, 0};
	if (poll(&p, 1, 5000) <= 0)
		return NULL;
	int fd = accept(ls, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (read_packet(fd, 5000) == 0)
		atomic_store(&connect_seen, 1);
	for (int i = 0; i < 1000 && !atomic_load(&answer); i++)
		usleep(10 * 1000);
	static const unsigned char reply[] = {
		0x20, 0x02, 0x00, 0x00,                          /* CONNACK accepted */
		0x32, 0x0b, 0x00, 0x05, 't', '/', 'l', 'a', 't', /* PUBLISH QoS 1 on t/lat */
		0x00, 0x01, 'h', 'i'};                           /* msg id 1, payload */
	if (send(fd, reply, sizeof(reply), MSG_NOSIGNAL) == (ssize_t)sizeof(reply)) {
		/* the client's answer: perhaps a PUBACK, then DISCONNECT or EOF */
		unsigned char buf[64];
		int64_t until = sp_mono_ms() + 3000;
		ssize_t n;
		while ((n = read_within(fd, buf, sizeof(buf), (int)(until - sp_mono_ms()))) > 0)
			if (memchr(buf, 0xe0, (size_t)n) != NULL) /* DISCONNECT */
				break;
		if (n >= 0)
			atomic_store(&closed, 1);
	}
	close(fd);
	return NULL;
}

/* A listening socket on a free loopback port (its address in *a), or -1 (checked). */
static int listen_loopback(struct sockaddr_in *a)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t alen = sizeof(*a);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = ls >= 0 && bind(ls, (struct sockaddr *)a, sizeof(*a)) == 0 && listen(ls, 4) == 0 &&
		  getsockname(ls, (struct sockaddr *)a, &alen) == 0;
	CHECK(ok);
	return ok ? ls : -1;
}

/* A client of the fake broker at a, with a persistent session; NULL (checked). */
static struct sp_mqtt *client_of(const struct sockaddr_in *a, const char *client_id)
{
	char uri[64];
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", ntohs(a->sin_port));
	struct sp_mqtt_params p = {0};
	p.uri = uri;
	p.client_id = client_id;
	p.keepalive_s = 30;
	p.clean_session = false;
	struct sp_mqtt_callbacks cb = {NULL, on_message, on_connected, NULL};
	struct sp_mqtt *m = sp_mqtt_create(&p, &cb);
	CHECK(m != NULL);
	return m;
}

static void test_late_connack_brings_nothing_up(void)
{
	struct sockaddr_in a;
	int ls = listen_loopback(&a);
	if (ls < 0)
		return;
	pthread_t broker;
	CHECK(pthread_create(&broker, NULL, broker_main, &ls) == 0);

	struct sp_mqtt *m = client_of(&a, "test-late");
	if (m == NULL)
		return;
	sp_mqtt_poll(m);
	for (int i = 0; i < 500 && !atomic_load(&connect_seen); i++)
		usleep(10 * 1000);
	CHECK(atomic_load(&connect_seen));

	int64_t t0 = sp_mono_ms();
	sp_mqtt_disconnect(m, 300); /* the connect is still under way when it gives up */
	CHECK(sp_mono_ms() - t0 < 3000);

	atomic_store(&answer, 1);
	for (int i = 0; i < 400 && !atomic_load(&closed); i++)
		usleep(10 * 1000);
	usleep(200 * 1000); /* a delivery would follow the CONNACK at once */
	CHECK_EQ_INT(atomic_load(&connected_calls), 0);
	CHECK_EQ_INT(atomic_load(&messages), 0);
	CHECK(!sp_mqtt_connected(m));
	CHECK(atomic_load(&closed)); /* closed at once, not left open until destroy */

	sp_mqtt_destroy(m, 0);
	pthread_join(broker, NULL);
	close(ls);
}

/*
 * A delivery that cannot end before the caller closes its queue (the
 * collector's ingest behind a store that cannot write): the disconnect
 * waits for it a bounded time, then returns, so the caller can close the
 * queue that frees it. An unbounded wait hung the collector's stop.
 */
static void test_blocked_delivery_bounded(void)
{
	struct sockaddr_in a;
	int ls = listen_loopback(&a);
	if (ls < 0)
		return;
	atomic_store(&answer, 1); /* CONNACK and the PUBLISH at once */
	atomic_store(&block_delivery, 1);
	pthread_t broker;
	CHECK(pthread_create(&broker, NULL, broker_main, &ls) == 0);

	struct sp_mqtt *m = client_of(&a, "test-blocked");
	if (m == NULL)
		return;
	sp_mqtt_poll(m);
	for (int i = 0; i < 500 && !atomic_load(&delivering); i++)
		usleep(10 * 1000);
	CHECK(atomic_load(&delivering)); /* the callback is blocked */

	int64_t t0 = sp_mono_ms();
	sp_mqtt_disconnect(m, 300);
	int64_t took = sp_mono_ms() - t0;
	CHECK(took >= 1000 && took < 5000); /* waited for it, then gave up: 300 ms + 1 s in all */
	CHECK(atomic_load(&delivering));    /* it is still under way: the caller frees it */
	atomic_store(&release, 1);
	for (int i = 0; i < 200 && atomic_load(&delivering); i++)
		usleep(10 * 1000);
	CHECK(!atomic_load(&delivering));

	sp_mqtt_destroy(m, 0);
	pthread_join(broker, NULL);
	close(ls);
}

int main(void)
{
	/* in a child: a hang in the code under test fails the check instead of the run */
	CHECK(in_child(test_late_connack_brings_nothing_up, 20000));
	CHECK(in_child(test_blocked_delivery_bounded, 20000));
	HARNESS_EXIT();
}
