/* test_apiparse.c - routing, bearer tokens and query parameters of the HTTP API. */
#include "harness.h"

#include "apiparse.h"

#include <stdint.h>

static void test_routes(void)
{
	CHECK_EQ_INT(apiparse_route("/healthz"), ROUTE_HEALTHZ);
	CHECK_EQ_INT(apiparse_route("/metrics"), ROUTE_METRICS);
	CHECK_EQ_INT(apiparse_route("/api/v1/sites"), ROUTE_SITES);
	CHECK_EQ_INT(apiparse_route("/api/v1/devices"), ROUTE_DEVICES);
	CHECK_EQ_INT(apiparse_route("/api/v1/readings"), ROUTE_READINGS);
	CHECK_EQ_INT(apiparse_route("/api/v1/readings/"), ROUTE_NOT_FOUND);
	CHECK_EQ_INT(apiparse_route("/api/v1/SITES"), ROUTE_NOT_FOUND);
	CHECK_EQ_INT(apiparse_route("/api/v1/../v1/sites"), ROUTE_NOT_FOUND);
	CHECK_EQ_INT(apiparse_route(""), ROUTE_NOT_FOUND);
	CHECK(!apiparse_route_needs_token(ROUTE_HEALTHZ));
	CHECK(!apiparse_route_needs_token(ROUTE_METRICS));
	CHECK(apiparse_route_needs_token(ROUTE_SITES));
	CHECK(apiparse_route_needs_token(ROUTE_READINGS));
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

static void test_devices_params(void)
{
	char err[128];
	CHECK_EQ_INT(apiparse_devices(NULL, err, sizeof(err)), 0);
	CHECK_EQ_INT(apiparse_devices("hp-ruijin-07", err, sizeof(err)), 0);
	CHECK_EQ_INT(apiparse_devices("Bad!", err, sizeof(err)), -1);
	CHECK(strstr(err, "site") != NULL);
}

int main(void)
{
	RUN(test_routes);
	RUN(test_bearer);
	RUN(test_readings_params);
	RUN(test_devices_params);
	HARNESS_EXIT();
}
