/*
 * test_mqtt_trace.c - the MQTT wrapper turns Paho's default per-call trace
 * bookkeeping off (docs/performance.md item 26), and leaves it on when
 * MQTT_C_CLIENT_TRACE asks Paho for a trace.
 *
 * Paho's trace level is process-wide and set once, so each case runs in a
 * child process. Paho hands the trace entries it keeps to a trace callback;
 * the child counts those below error level while a client makes one
 * (refused) connect attempt to a closed loopback port.
 */
#include "harness.h"

#include "sitepulse/mqtt.h"

#include <MQTTAsync.h>
#include <stdatomic.h>

static atomic_int below_error; /* written on Paho's threads */

static void on_trace(enum MQTTASYNC_TRACE_LEVELS level, char *message)
{
	(void)message;
	if (level < MQTTASYNC_TRACE_ERROR)
		atomic_fetch_add(&below_error, 1);
}

static void on_message(void *ctx, const char *topic, size_t topic_len, const void *payload,
		       size_t len)
{
	(void)ctx;
	(void)topic;
	(void)topic_len;
	(void)payload;
	(void)len;
}

/* In a child: the number of sub-error trace entries, as the exit status (capped). */
static int traced_entries(const char *trace_env)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (trace_env)
			setenv("MQTT_C_CLIENT_TRACE", trace_env, 1);
		MQTTAsync_setTraceCallback(on_trace);
		struct sp_mqtt_params p = {0};
		p.uri = "tcp://127.0.0.1:1"; /* nothing listens on port 1: refused at once */
		p.client_id = "test-trace";
		struct sp_mqtt_callbacks cb = {NULL, on_message, NULL, NULL};
		struct sp_mqtt *m = sp_mqtt_create(&p, &cb);
		if (m == NULL)
			_exit(255);
		/* what the first client prints once (Paho's banner) is not per-call tracing */
		atomic_store(&below_error, 0);
		sp_mqtt_poll(m);
		struct timespec nap = {0, 200 * 1000 * 1000};
		nanosleep(&nap, NULL);
		sp_mqtt_destroy(m, 500);
		int n = atomic_load(&below_error);
		_exit(n > 200 ? 200 : n);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void test_default_trace_off(void)
{
	CHECK_EQ_INT(traced_entries(NULL), 0);
}

static void test_trace_kept_on_request(void)
{
	/* the same steps with a trace asked for: Paho keeps its entries (so the case above can fail) */
	int n = traced_entries("/dev/null");
	CHECK(n > 0 && n != 255);
}

int main(void)
{
	RUN(test_default_trace_off);
	RUN(test_trace_kept_on_request);
	HARNESS_EXIT();
}
