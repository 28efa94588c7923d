/* apiparse.c - routing, tokens and query parameters of the API (see apiparse.h). */
#include "apiparse.h"

#include "rules.h"

#include "web.h"

#include "sitepulse/codec.h"
#include "sitepulse/ids.h"
#include "sitepulse/record.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* "/api/v1/alerts/{id}/ack" with id a positive decimal without sign or leading zero. */
static bool alert_ack_path(const char *path, int64_t *id)
{
	static const char prefix[] = "/api/v1/alerts/";
	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return false;
	/* past the prefix only once the path is known to hold it */
	const char *p = path + sizeof(prefix) - 1;
	int64_t v = 0;
	int digits = 0;
	if (*p < '1' || *p > '9')
		return false;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++digits > 18)
			return false; /* keeps v far from overflow */
		v = v * 10 + (*p - '0');
	}
	if (strcmp(p, "/ack") != 0)
		return false;
	*id = v;
	return true;
}

enum api_route apiparse_route(const char *path, int64_t *id)
{
	static const struct {
		const char *path;
		enum api_route route;
	} routes[] = {
		{"/healthz", ROUTE_HEALTHZ},         {"/metrics", ROUTE_METRICS},
		{"/api/v1/sites", ROUTE_SITES},      {"/api/v1/devices", ROUTE_DEVICES},
		{"/api/v1/readings", ROUTE_READINGS}, {"/api/v1/alerts", ROUTE_ALERTS},
		{"/api/v1/summaries", ROUTE_SUMMARIES},
		{"/api/v1/alerts/counts", ROUTE_ALERT_COUNTS}, {"/api/v1/me", ROUTE_ME},
	};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(path, routes[i].path) == 0)
			return routes[i].route;
	if (alert_ack_path(path, id))
		return ROUTE_ALERT_ACK;
	struct web_file f;
	if (web_find_file(path, &f) == 0)
		return ROUTE_STATIC;
	return ROUTE_NOT_FOUND;
}

bool apiparse_route_needs_token(enum api_route r)
{
	/* the dashboard's files hold no data: the data they fetch needs the token */
	return r != ROUTE_HEALTHZ && r != ROUTE_METRICS && r != ROUTE_STATIC;
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

bool apiparse_arg_ok(const char *s, size_t size)
{
	return s == NULL || strnlen(s, size) == size;
}

/*
 * Parses an optional integer parameter within [min, max]: an optional '-'
 * and decimal digits, nothing else. strtoll alone would also take leading
 * white space of any kind ("%09" is a tab) and a '+', so the form is
 * checked first. 0 ok (absent leaves *out), -1 bad.
 */
static int int_param(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	if (v == NULL)
		return 0;
	const char *digits = *v == '-' ? v + 1 : v;
	if (*digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (*end != '\0' || errno || x < min || x > max)
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
	q->with_any = NULL;
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

int apiparse_devices(const char *site, const char *current, bool *with_current, char *err,
		     size_t errlen)
{
	if (site && !sp_id_valid_str(site)) {
		snprintf(err, errlen, "site: not a valid identifier");
		return -1;
	}
	*with_current = current && strcmp(current, "1") == 0;
	if (current && !*with_current && strcmp(current, "0") != 0) {
		snprintf(err, errlen, "current: 0 or 1");
		return -1;
	}
	/* every charger of the fleet at once would hold a reader for seconds at 100k devices */
	if (*with_current && site == NULL) {
		snprintf(err, errlen, "current=1 needs a site");
		return -1;
	}
	return 0;
}

int apiparse_alerts(const struct apiparse_alerts_args *a, struct store_alerts_query *q, char *err,
		    size_t errlen)
{
	q->state = STORE_ALERTS_ALL;
	q->site = a->site;
	q->severity = NULL;
	q->limit = API_ALERTS_DEFAULT;
	if (a->state) {
		if (strcmp(a->state, "active") == 0)
			q->state = STORE_ALERTS_ACTIVE;
		else if (strcmp(a->state, "cleared") == 0)
			q->state = STORE_ALERTS_CLEARED;
		else if (strcmp(a->state, "all") != 0) {
			snprintf(err, errlen, "state: one of active, cleared, all");
			return -1;
		}
	}
	if (a->site && !sp_id_valid_str(a->site)) {
		snprintf(err, errlen, "site: not a valid identifier");
		return -1;
	}
	if (a->severity) {
		int sev = alert_severity_parse(a->severity);
		if (sev >= 0)
			q->severity = alert_severity_name((enum alert_severity)sev);
		if (q->severity == NULL) {
			snprintf(err, errlen, "severity: one of critical, major, minor, warning");
			return -1;
		}
	}
	if (int_param(a->limit, 1, API_ALERTS_MAX, &q->limit)) {
		snprintf(err, errlen, "limit: 1..%d", API_ALERTS_MAX);
		return -1;
	}
	return 0;
}

int apiparse_acked_by(const char *body, size_t len, char *out, char *err, size_t errlen)
{
	size_t i = 0;
	while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
		i++;
	if (i == len)
		return 0;
	cJSON *root = cJSON_ParseWithLength(body, len);
	int rc = -1;
	if (root == NULL || !cJSON_IsObject(root)) {
		snprintf(err, errlen, "body: a JSON object like {\"by\":\"name\"}, or nothing");
		goto done;
	}
	const cJSON *by = cJSON_GetObjectItemCaseSensitive(root, "by");
	if (by == NULL) {
		rc = 0;
		goto done;
	}
	size_t n = cJSON_IsString(by) ? strlen(by->valuestring) : 0;
	/* cJSON decodes \u0000 to a NUL and keeps no length: "ann\u0000x" would read as "ann" */
	if (n > 0 && sp_json_has_nul(body, len)) {
		snprintf(err, errlen, "by: no control characters");
		goto done;
	}
	if (n == 0 || n > API_ACKED_BY_MAX || !sp_utf8_valid(by->valuestring, n)) {
		snprintf(err, errlen, "by: 1..%d bytes of text", API_ACKED_BY_MAX);
		goto done;
	}
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)by->valuestring[k] < 0x20 || by->valuestring[k] == 0x7f) {
			snprintf(err, errlen, "by: no control characters");
			goto done;
		}
	memcpy(out, by->valuestring, n + 1);
	rc = 1;
done:
	cJSON_Delete(root);
	return rc;
}

int apiparse_summaries(const char *site, const char *from, const char *to, const char *limit,
		       struct apiparse_summaries_query *q, char *err, size_t errlen)
{
	q->site = site;
	q->from = 0;
	q->to = INT64_MAX;
	q->limit = API_SUMMARIES_DEFAULT;
	if (site == NULL || !sp_id_valid_str(site)) {
		snprintf(err, errlen, "site: required, a valid identifier");
		return -1;
	}
	if (int_param(from, 0, INT64_MAX, &q->from) || int_param(to, 0, INT64_MAX, &q->to)) {
		snprintf(err, errlen, "from, to: milliseconds since the epoch");
		return -1;
	}
	if (q->from > q->to) {
		snprintf(err, errlen, "from is after to");
		return -1;
	}
	if (int_param(limit, 1, API_SUMMARIES_MAX, &q->limit)) {
		snprintf(err, errlen, "limit: 1..%d", API_SUMMARIES_MAX);
		return -1;
	}
	return 0;
}
