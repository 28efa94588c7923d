/* test_apiparse.c - routing, bearer tokens and query parameters of the HTTP API. */
#include "harness.h"

#include "apiparse.h"

#include <stdint.h>

static enum api_route route(const char *path)
{
	int64_t id = -1;
	return apiparse_route(path, &id);
}

static void test_routes(void)
{
	CHECK_EQ_INT(route("/healthz"), ROUTE_HEALTHZ);
	CHECK_EQ_INT(route("/metrics"), ROUTE_METRICS);
	CHECK_EQ_INT(route("/api/v1/sites"), ROUTE_SITES);
	CHECK_EQ_INT(route("/api/v1/devices"), ROUTE_DEVICES);
	CHECK_EQ_INT(route("/api/v1/readings"), ROUTE_READINGS);
	CHECK_EQ_INT(route("/api/v1/readings/"), ROUTE_NOT_FOUND);
	CHECK_EQ_INT(route("/api/v1/SITES"), ROUTE_NOT_FOUND);
	CHECK_EQ_INT(route("/api/v1/../v1/sites"), ROUTE_NOT_FOUND);
	CHECK_EQ_INT(route(""), ROUTE_NOT_FOUND);
	CHECK(!apiparse_route_needs_token(ROUTE_HEALTHZ));
	CHECK(!apiparse_route_needs_token(ROUTE_METRICS));
	CHECK(apiparse_route_needs_token(ROUTE_SITES));
	CHECK(apiparse_route_needs_token(ROUTE_READINGS));
	CHECK_EQ_INT(route("/api/v1/alerts"), ROUTE_ALERTS);
	CHECK(apiparse_route_needs_token(ROUTE_ALERTS));
	CHECK(apiparse_route_needs_token(ROUTE_ALERT_ACK));
	CHECK_EQ_INT(route("/api/v1/alerts/counts"), ROUTE_ALERT_COUNTS);
	CHECK(apiparse_route_needs_token(ROUTE_ALERT_COUNTS));
	CHECK_EQ_INT(route("/api/v1/alerts/counts/"), ROUTE_NOT_FOUND);
	CHECK_EQ_INT(route("/api/v1/me"), ROUTE_ME);
	CHECK(apiparse_route_needs_token(ROUTE_ME));
}

/* The dashboard's files: no token (their data needs one); nothing else is static. */
static void test_static_routes(void)
{
	CHECK_EQ_INT(route("/"), ROUTE_STATIC);
	CHECK_EQ_INT(route("/dashboard.js"), ROUTE_STATIC);
	CHECK_EQ_INT(route("/dashboard.css"), ROUTE_STATIC);
	CHECK_EQ_INT(route("/favicon.svg"), ROUTE_STATIC);
	CHECK(!apiparse_route_needs_token(ROUTE_STATIC));
	const char *bad[] = {"//",           "/dashboard.html",      "/index.html",
			     "/Dashboard.js", "/dashboard.css/",     "/api/",
			     "/api/v1/",     "/api/v1/dashboard.js", "/./",
			     "/favicon.ico"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (route(bad[i]) != ROUTE_NOT_FOUND)
			fprintf(stderr, "  routed: %s\n", bad[i]);
		CHECK_EQ_INT(route(bad[i]), ROUTE_NOT_FOUND);
	}
}

/* POST /api/v1/alerts/{id}/ack: a plain positive decimal id, nothing else. */
static void test_alert_ack_route(void)
{
	int64_t id = 0;
	CHECK_EQ_INT(apiparse_route("/api/v1/alerts/17/ack", &id), ROUTE_ALERT_ACK);
	CHECK_EQ_INT(id, 17);
	CHECK_EQ_INT(apiparse_route("/api/v1/alerts/999999999999999999/ack", &id), ROUTE_ALERT_ACK);
	CHECK_EQ_INT(id, 999999999999999999LL);
	const char *bad[] = {"/api/v1/alerts/0/ack",   "/api/v1/alerts/-1/ack",
			     "/api/v1/alerts/017/ack", "/api/v1/alerts/1x/ack",
			     "/api/v1/alerts//ack",    "/api/v1/alerts/1/ack/",
			     "/api/v1/alerts/1",       "/api/v1/alerts/1/acknowledge",
			     "/api/v1/alerts/+1/ack",  "/api/v1/alerts/1000000000000000000/ack"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (route(bad[i]) != ROUTE_NOT_FOUND)
			fprintf(stderr, "  routed: %s\n", bad[i]);
		CHECK_EQ_INT(route(bad[i]), ROUTE_NOT_FOUND);
	}
}

static void test_alerts_params(void)
{
	struct store_alerts_query q;
	char err[128];
	struct apiparse_alerts_args none = {NULL, NULL, NULL, NULL};
	CHECK_EQ_INT(apiparse_alerts(&none, &q, err, sizeof(err)), 0);
	CHECK_EQ_INT(q.state, STORE_ALERTS_ALL);
	CHECK(q.site == NULL && q.severity == NULL);
	CHECK_EQ_INT(q.limit, API_ALERTS_DEFAULT);
	struct apiparse_alerts_args all = {"active", "hp-ruijin-07", "major", "5"};
	CHECK_EQ_INT(apiparse_alerts(&all, &q, err, sizeof(err)), 0);
	CHECK_EQ_INT(q.state, STORE_ALERTS_ACTIVE);
	CHECK_EQ_STR(q.site, "hp-ruijin-07");
	CHECK_EQ_STR(q.severity, "major");
	CHECK_EQ_INT(q.limit, 5);
	struct apiparse_alerts_args cleared = {"cleared", NULL, NULL, NULL};
	CHECK_EQ_INT(apiparse_alerts(&cleared, &q, err, sizeof(err)), 0);
	CHECK_EQ_INT(q.state, STORE_ALERTS_CLEARED);
	struct apiparse_alerts_args bad[] = {
		{"open", NULL, NULL, NULL},  {NULL, "Bad Site", NULL, NULL},
		{NULL, NULL, "fatal", NULL}, {NULL, NULL, NULL, "0"},
		{NULL, NULL, NULL, "10001"}, {NULL, NULL, "", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(apiparse_alerts(&bad[i], &q, err, sizeof(err)), -1);
		CHECK(err[0] != '\0');
	}
}

static int acked_by(const char *body, char *out)
{
	char err[128];
	return apiparse_acked_by(body, strlen(body), out, err, sizeof(err));
}

static void test_acked_by(void)
{
	char out[API_ACKED_BY_MAX + 1];
	CHECK_EQ_INT(acked_by("", out), 0);
	CHECK_EQ_INT(acked_by(" \r\n", out), 0);
	CHECK_EQ_INT(acked_by("{}", out), 0);
	CHECK_EQ_INT(acked_by("{\"by\":\"Li Wei\"}", out), 1);
	CHECK_EQ_STR(out, "Li Wei");
	CHECK_EQ_INT(acked_by("{\"by\":\"\u674e\u4f1f\"}", out), 1);
	CHECK_EQ_STR(out, "\xe6\x9d\x8e\xe4\xbc\x9f");
	char long_name[API_ACKED_BY_MAX + 32];
	snprintf(long_name, sizeof(long_name), "{\"by\":\"%0*d\"}", API_ACKED_BY_MAX + 1, 0);
	const char *bad[] = {"{\"by\":1}", "{\"by\":\"\"}", "[1]", "not json", "{\"by\":\"a\\nb\"}",
			     "{\"by\":null}", long_name,
			     /* cJSON reads \u0000 as a NUL: "ann\u0000x" must not become "ann" */
			     "{\"by\":\"ann\\u0000x\"}", "{\"by\":\"\\u0000\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(acked_by(bad[i], out), -1);
}

/* A query parameter with a NUL (%00) is refused: C string functions would read it cut short. */
static void test_arg_nul(void)
{
	CHECK(apiparse_arg_ok(NULL, 0));
	CHECK(apiparse_arg_ok("", 0));
	CHECK(apiparse_arg_ok("s1", 2));
	CHECK(!apiparse_arg_ok("s1\0x", 4)); /* site=s1%00x, as libmicrohttpd decodes it */
	CHECK(!apiparse_arg_ok("\0", 1));
	/* what the validators would have seen of it: a valid site, which is why it must not get there */
	char err[128];
	bool current;
	CHECK_EQ_INT(apiparse_devices("s1\0x", NULL, &current, err, sizeof(err)), 0);
}

static void test_bearer(void)
{
	const char *tok;
	size_t len;
	CHECK_EQ_INT(apiparse_bearer("Bearer abc123", &tok, &len), 0);
	CHECK_EQ_INT(len, 6);
	CHECK(strncmp(tok, "abc123", len) == 0);
	CHECK_EQ_INT(apiparse_bearer("bearer   abc  ", &tok, &len), 0);
	CHECK_EQ_INT(len, 3);
	CHECK_EQ_INT(apiparse_bearer("Basic abc", &tok, &len), -1);
	CHECK_EQ_INT(apiparse_bearer("Bearer ", &tok, &len), -1);
	CHECK_EQ_INT(apiparse_bearer("Bearer", &tok, &len), -1);
	CHECK_EQ_INT(apiparse_bearer(NULL, &tok, &len), -1);
}

static int readings(const char *site, const char *dev, const char *t, const char *from,
		    const char *to, const char *limit, struct store_readings_query *q)
{
	struct apiparse_readings_args a = {site, dev, t, from, to, limit};
	char err[128];
	return apiparse_readings(&a, q, err, sizeof(err));
}

static void test_readings_params(void)
{
	struct store_readings_query q;
	CHECK_EQ_INT(readings("s1", "lift-1", NULL, NULL, NULL, NULL, &q), 0);
	CHECK_EQ_INT(q.kind, -1);
	CHECK_EQ_INT(q.from, 0);
	CHECK(q.to == INT64_MAX);
	CHECK_EQ_INT(q.limit, API_READINGS_DEFAULT);
	CHECK_EQ_INT(readings("s1", "chg-1", "port", "1764320000000", "1764330000000", "10000", &q), 0);
	CHECK_EQ_INT(q.kind, SP_REC_PORT);
	CHECK_EQ_INT(q.from, 1764320000000LL);
	CHECK_EQ_INT(q.to, 1764330000000LL);
	CHECK_EQ_INT(q.limit, 10000);
	CHECK_EQ_INT(readings("s1", "d", NULL, "5", "5", "1", &q), 0); /* from == to is fine */

	CHECK_EQ_INT(readings(NULL, "d", NULL, NULL, NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", NULL, NULL, NULL, NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("S1", "d", NULL, NULL, NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d;drop", NULL, NULL, NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", "elevator", NULL, NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, "x", NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, "-1", NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, "", NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, " 5", NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, "99999999999999999999", NULL, NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, "10", "9", NULL, &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, NULL, NULL, "0", &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, NULL, NULL, "10001", &q), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, NULL, NULL, "1e3", &q), -1);
}

/*
 * Integer parameters are an optional '-' and digits, nothing else: strtoll
 * alone skips leading white space of any kind and takes a '+'. Each form is
 * tried on every integer parameter of the three routes that have them.
 */
static void test_int_params_strict(void)
{
	static const char *const bad[] = {"\t5", "\n5", "\v5", "\f5", "\r5", " 5",
					  "+5", "5 ", "5\t", "-",  "--5", "+-5",
					  "- 5", "0x5", "",  " "};
	struct store_readings_query rq;
	struct store_alerts_query aq;
	struct apiparse_summaries_query sq;
	char err[128];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *v = bad[i];
		struct apiparse_alerts_args a = {NULL, NULL, NULL, v};
		CHECK_EQ_INT(readings("s1", "d", NULL, NULL, NULL, v, &rq), -1);
		CHECK_EQ_INT(readings("s1", "d", NULL, v, NULL, NULL, &rq), -1);
		CHECK_EQ_INT(readings("s1", "d", NULL, NULL, v, NULL, &rq), -1);
		CHECK_EQ_INT(apiparse_alerts(&a, &aq, err, sizeof(err)), -1);
		CHECK_EQ_INT(apiparse_summaries("s1", NULL, NULL, v, &sq, err, sizeof(err)), -1);
		CHECK_EQ_INT(apiparse_summaries("s1", v, NULL, NULL, &sq, err, sizeof(err)), -1);
		CHECK_EQ_INT(apiparse_summaries("s1", NULL, v, NULL, &sq, err, sizeof(err)), -1);
	}
	/* the same values without the stray character are taken */
	struct apiparse_alerts_args five = {NULL, NULL, NULL, "5"};
	CHECK_EQ_INT(readings("s1", "d", NULL, "5", "5", "5", &rq), 0);
	CHECK_EQ_INT(rq.limit, 5);
	CHECK_EQ_INT(rq.from, 5);
	CHECK_EQ_INT(apiparse_alerts(&five, &aq, err, sizeof(err)), 0);
	CHECK_EQ_INT(aq.limit, 5);
	CHECK_EQ_INT(apiparse_summaries("s1", "5", "5", "5", &sq, err, sizeof(err)), 0);
	CHECK_EQ_INT(sq.limit, 5);
	/* a '-' is the one sign: parsed, then refused by the range (or taken, for -0) */
	CHECK_EQ_INT(readings("s1", "d", NULL, NULL, NULL, "-5", &rq), -1);
	CHECK_EQ_INT(readings("s1", "d", NULL, "-0", NULL, NULL, &rq), 0);
	CHECK_EQ_INT(rq.from, 0);
}

static void test_devices_params(void)
{
	char err[128];
	bool current;
	CHECK_EQ_INT(apiparse_devices(NULL, NULL, &current, err, sizeof(err)), 0);
	CHECK(!current);
	CHECK_EQ_INT(apiparse_devices("hp-ruijin-07", "1", &current, err, sizeof(err)), 0);
	CHECK(current);
	CHECK_EQ_INT(apiparse_devices("hp-ruijin-07", "0", &current, err, sizeof(err)), 0);
	CHECK(!current);
	CHECK_EQ_INT(apiparse_devices(NULL, "0", &current, err, sizeof(err)), 0);
	CHECK_EQ_INT(apiparse_devices(NULL, "1", &current, err, sizeof(err)), -1);
	CHECK_EQ_STR(err, "current=1 needs a site");
	CHECK_EQ_INT(apiparse_devices("Bad!", NULL, &current, err, sizeof(err)), -1);
	CHECK(strstr(err, "site") != NULL);
	const char *bad_current[] = {"", "2", "true", "01", "1 ", NULL};
	for (int i = 0; bad_current[i]; i++) {
		CHECK_EQ_INT(apiparse_devices("s1", bad_current[i], &current, err, sizeof(err)), -1);
		CHECK_EQ_STR(err, "current: 0 or 1");
	}
}

int main(void)
{
	RUN(test_routes);
	RUN(test_static_routes);
	RUN(test_alert_ack_route);
	RUN(test_alerts_params);
	RUN(test_acked_by);
	RUN(test_arg_nul);
	RUN(test_bearer);
	RUN(test_readings_params);
	RUN(test_int_params_strict);
	RUN(test_devices_params);
	HARNESS_EXIT();
}
