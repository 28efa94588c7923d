/* apiparse.c - routing, tokens and query parameters of the API (see apiparse.h). */
#include "apiparse.h"

#include "sitepulse/ids.h"
#include "sitepulse/record.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum api_route apiparse_route(const char *path)
{
	static const struct {
		const char *path;
		enum api_route route;
	} routes[] = {
		{"/healthz", ROUTE_HEALTHZ},         {"/metrics", ROUTE_METRICS},
		{"/api/v1/sites", ROUTE_SITES},      {"/api/v1/devices", ROUTE_DEVICES},
		{"/api/v1/readings", ROUTE_READINGS},
	};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(path, routes[i].path) == 0)
			return routes[i].route;
	return ROUTE_NOT_FOUND;
}

bool apiparse_route_needs_token(enum api_route r)
{
	return r != ROUTE_HEALTHZ && r != ROUTE_METRICS;
}

int apiparse_bearer(const char *header, const char **token, size_t *len)
{
	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return -1;
	const char *t = header + 7;
	while (*t == ' ')
		t++;
	size_t n = strnlen(t, 1025);
	while (n > 0 && t[n - 1] == ' ')
		n--;
	if (n == 0 || n > 1024)
		return -1;
	*token = t;
	*len = n;
	return 0;
}

/* Parses an optional integer parameter within [min, max]. 0 ok (absent leaves *out), -1 bad. */
static int int_param(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	if (v == NULL)
		return 0;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (*v == '\0' || *v == ' ' || *end != '\0' || errno || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

int apiparse_readings(const struct apiparse_readings_args *a, struct store_readings_query *q,
		      char *err, size_t errlen)
{
	q->site = a->site;
	q->dev = a->dev;
	q->kind = -1;
	q->from = 0;
	q->to = INT64_MAX;
	q->limit = API_READINGS_DEFAULT;
	if (a->site == NULL || a->dev == NULL) {
		snprintf(err, errlen, "site and dev are required");
		return -1;
	}
	if (!sp_id_valid_str(a->site) || !sp_id_valid_str(a->dev)) {
		snprintf(err, errlen, "site, dev: not valid identifiers");
		return -1;
	}
	if (a->t && (q->kind = sp_rec_kind_parse(a->t)) < 0) {
		snprintf(err, errlen, "t: one of lift, station, port, session, fault");
		return -1;
	}
	if (int_param(a->from, 0, INT64_MAX, &q->from) || int_param(a->to, 0, INT64_MAX, &q->to)) {
		snprintf(err, errlen, "from, to: milliseconds since the epoch");
		return -1;
	}
	if (q->from > q->to) {
		snprintf(err, errlen, "from is after to");
		return -1;
	}
	if (int_param(a->limit, 1, API_READINGS_MAX, &q->limit)) {
		snprintf(err, errlen, "limit: 1..%d", API_READINGS_MAX);
		return -1;
	}
	return 0;
}

int apiparse_devices(const char *site, char *err, size_t errlen)
{
	if (site && !sp_id_valid_str(site)) {
		snprintf(err, errlen, "site: not a valid identifier");
		return -1;
	}
	return 0;
}
