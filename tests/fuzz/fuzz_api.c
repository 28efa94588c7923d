/*
 * fuzz_api.c - libFuzzer target for the HTTP API's request parsing: the
 * path router (with the alert id of .../ack, and the dashboard's static
 * files, which must be exactly what web.c serves), the Authorization header, the
 * readings/devices/alerts query parameters, the ack body and the token
 * check. The input is split at NUL bytes into: path, Authorization header,
 * site, dev, t, from, to, limit (missing parts are absent); the alerts'
 * state, site, severity and limit reuse t, site, dev and limit, and the
 * Authorization part doubles as an ack body.
 */
#include "apiparse.h"
#include "tokens.h"
#include "web.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tokens *tokens;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *part[8] = {NULL};
	char *copy = malloc(size + 1);
	char err[128];
	size_t n = 0;

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (char *p = copy; n < 8 && p <= copy + size; p += strlen(p) + 1)
		part[n++] = p;

	int64_t alert_id = 0;
	enum api_route r = apiparse_route(part[0] ? part[0] : "", &alert_id);
	(void)apiparse_route_needs_token(r);
	if (r == ROUTE_ALERT_ACK && alert_id < 1)
		abort(); /* routed an id that is not an alert's */
	struct web_file wf;
	if ((r == ROUTE_STATIC) != (web_find_file(part[0] ? part[0] : "", &wf) == 0))
		abort(); /* the router and the embedded files disagree */
	if (r == ROUTE_STATIC &&
	    (apiparse_route_needs_token(r) || strncmp(part[0], "/api/", 5) == 0))
		abort(); /* a static file that asks for a token, or one under /api/ */

	const char *tok;
	size_t len;
	if (apiparse_bearer(part[1], &tok, &len) == 0) {
		if (len == 0 || len > 1024)
			abort();
		if (tokens == NULL) {
			char v[] = "viewer-token-0123456789", o[] = "x";
			char *vi[] = {v}, *oi[] = {o};
			struct sp_conf_list vl = {vi, 1}, ol = {oi, 1};
			tokens = tokens_create(&vl, &ol, err, sizeof(err));
		}
		enum token_role role = tokens_check(tokens, tok, len, NULL);
		if (role != TOKEN_NONE && !(len == 1 && tok[0] == 'x') &&
		    !(len == 23 && memcmp(tok, "viewer-token-0123456789", 23) == 0))
			abort(); /* a token that is not configured was accepted */
	}

	struct apiparse_readings_args a = {part[2], part[3], part[4], part[5], part[6], part[7]};
	struct store_readings_query q;
	if (apiparse_readings(&a, &q, err, sizeof(err)) == 0) {
		if (q.limit < 1 || q.limit > API_READINGS_MAX || q.from > q.to || q.site == NULL ||
		    q.dev == NULL)
			abort(); /* accepted something out of bounds */
	}
	bool current;
	if (apiparse_devices(part[2], part[3], &current, err, sizeof(err)) == 0 && current &&
	    (strcmp(part[3], "1") != 0 || part[2] == NULL))
		abort(); /* current asked for by anything but "1", or for the whole fleet */

	struct apiparse_alerts_args aa = {part[4], part[2], part[3], part[7]};
	struct store_alerts_query aq;
	if (apiparse_alerts(&aa, &aq, err, sizeof(err)) == 0 &&
	    (aq.limit < 1 || aq.limit > API_ALERTS_MAX))
		abort();
	char by[API_ACKED_BY_MAX + 1];
	if (part[1] && apiparse_acked_by(part[1], strlen(part[1]), by, err, sizeof(err)) == 1 &&
	    (by[0] == '\0' || strlen(by) > API_ACKED_BY_MAX))
		abort();
	free(copy);
	return 0;
}
