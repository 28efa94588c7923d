/*
 * api.c - the HTTP server over libmicrohttpd (see api.h, api_int.h): its
 * daemon, a request's life and every refusal; the routes' answers are
 * api_routes.c's.
 *
 * Every /api/ route needs "Authorization: Bearer TOKEN"; tokens are kept as
 * digests and compared in constant time (tokens.c), never logged. Errors
 * are {"error":"…"} with a 4xx/5xx status; unknown query parameters are
 * ignored. The dashboard's files (web.c) are served without a token, with
 * a strict Content-Security-Policy: the data they fetch needs the token.
 * A request is judged on its headers before its body is read (on_headers).
 */
#include "api_int.h"

#include "sitepulse/clock.h"
#include "sitepulse/error.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define REQUEST_MEMORY (32 * 1024)  /* request line + headers of one connection */
#define BODY_MAX (64 * 1024)        /* request bodies larger than this are refused */
#define ACK_BODY_MAX 1024           /* the one body a route reads: {"by":"name"} */
#define PEM_MAX (1024 * 1024)       /* certificate chain or key file */
/*
 * Refused requests are logged at most this many to a window: a hostile
 * client sending thousands gets the first few logged, the rest counted
 * (sitepulse_http_refused_total), and their number logged with the next.
 */
#define REFUSAL_LOG_BURST 10
#define REFUSAL_LOG_WINDOW_MS 60000

/* ---------------------------------------------------------------- responses */

/* An answer's body, handed back by libmicrohttpd once it is done with it. */
struct queued {
	struct api *api;
	void *data;
	size_t len;
};

/* libmicrohttpd's thread, when the answer has gone out or its connection closed. */
static void free_queued(void *cls)
{
	struct queued *q = cls;
	atomic_fetch_sub(&q->api->response_bytes, q->len);
	free(q->data);
	free(q);
}

/*
 * Counts len bytes into the answers queued: false, counting nothing, when
 * an answer of API_RESPONSE_SMALL or more would go past the budget. Small
 * ones always go (errors, /healthz): they are bounded by the connections;
 * so does a big one while no other is queued, however small the budget
 * (each is bounded by RESPONSE_MAX).
 */
static bool reserve(struct api *a, size_t len)
{
	size_t cur = atomic_load(&a->response_bytes);
	do {
		if (len >= API_RESPONSE_SMALL && cur >= API_RESPONSE_SMALL &&
		    (cur > a->response_budget || len > a->response_budget - cur))
			return false;
	} while (!atomic_compare_exchange_weak(&a->response_bytes, &cur, cur + len));
	return true;
}

/*
 * Queues b, counted in by reserve, as the answer. allow: the route's
 * methods for the Allow header a 405 must carry (RFC 9110 §15.5.6), else NULL.
 */
static enum MHD_Result send_buf_allow(struct api *a, struct MHD_Connection *c, unsigned status,
				      struct sp_buf *b, const char *type, const char *allow)
{
	/* ownership of the buffer passes to libmicrohttpd (freed by free_queued) */
	struct queued *q = NULL;
	struct MHD_Response *r = NULL;
	if ((b->data == NULL && sp_buf_reserve(b, 0)) || (q = malloc(sizeof(*q))) == NULL)
		goto fail;
	*q = (struct queued){a, b->data, b->len};
	r = MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, free_queued, q);
	if (r == NULL)
		goto fail;
	b->data = NULL;
	b->len = b->cap = 0;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r); /* the body goes with the connection's last reference */
	return ret;
fail:
	atomic_fetch_sub(&a->response_bytes, b->len);
	free(q);
	sp_buf_free(b);
	return MHD_NO;
}

/* The client's address, numeric, for the log; "?" when unknown. */
static void client_address(struct MHD_Connection *c, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	socklen_t salen = sa == NULL               ? 0
			  : sa->sa_family == AF_INET  ? sizeof(struct sockaddr_in)
			  : sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						      : 0;
	if (salen == 0 || getnameinfo(sa, salen, out, (socklen_t)len, NULL, 0, NI_NUMERICHOST))
		snprintf(out, len, "?");
}

/*
 * Refusals are logged rate-limited across the HTTP threads: true if this
 * one may be (after a line saying how many were not, when some were not).
 */
static bool refusal_log_allowed(struct api *a)
{
	uint64_t suppressed;
	pthread_mutex_lock(&a->refusal_lock);
	bool log = sp_ratelimit_allow(&a->refusal_log, sp_mono_ms(), REFUSAL_LOG_BURST,
				      REFUSAL_LOG_WINDOW_MS, &suppressed);
	pthread_mutex_unlock(&a->refusal_lock);
	if (suppressed)
		SP_INFO("api", "(%llu more refused requests not logged; counted in "
			       "sitepulse_http_refused_total)",
			(unsigned long long)suppressed);
	return log;
}

/*
 * Every refusal leaves a trace: counted by status (METRICS_REFUSED_CLOSED:
 * the connection closed without an answer) and logged, rate-limited. The line names the client,
 * method, path and the answer's message; never the query string or a
 * header, which may carry a token.
 */
static void note_refusal(struct MHD_Connection *c, const struct request *rq, unsigned status,
			 const char *msg)
{
	struct api *a = rq->api;
	char addr[64], st[16];
	metrics_count_refused(a->p.metrics, status);
	if (!refusal_log_allowed(a))
		return;
	client_address(c, addr, sizeof(addr));
	if (status)
		snprintf(st, sizeof(st), "%u", status);
	else
		snprintf(st, sizeof(st), "closed");
	SP_INFO("api", "refused %s %s from %s: %s %s", rq->method, rq->path, addr, st, msg);
}

/* {"error":msg} with status; allow as in send_buf_allow. Small: never refused (reserve). */
static enum MHD_Result send_error_msg(struct api *a, struct MHD_Connection *c, unsigned status,
				      const char *allow, const char *msg)
{
	struct sp_buf b = SP_BUF_INIT(0);
	if (sp_buf_puts(&b, "{\"error\":") || sp_buf_json_str(&b, msg, strlen(msg)) ||
	    sp_buf_putc(&b, '}')) {
		sp_buf_free(&b);
		return MHD_NO;
	}
	reserve(a, b.len);
	return send_buf_allow(a, c, status, &b, "application/json", allow);
}

/* Refuses the request: {"error":…} with status, counted and logged (note_refusal). */
enum MHD_Result api_send_error(struct MHD_Connection *c, const struct request *rq,
			       unsigned status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	note_refusal(c, rq, status, msg);
	return send_error_msg(rq->api, c, status, NULL, msg);
}

enum MHD_Result api_send_buf(struct MHD_Connection *c, const struct request *rq, unsigned status,
			     struct sp_buf *b, const char *type)
{
	struct api *a = rq->api;
	if (!reserve(a, b->len)) {
		sp_buf_free(b);
		return api_send_error(c, rq, MHD_HTTP_SERVICE_UNAVAILABLE,
				      "server busy: answers of %zu MB wait for their readers "
				      "([api] response_mb), try again",
				      (size_t)(atomic_load(&a->response_bytes) >> 20));
	}
	return send_buf_allow(a, c, status, b, type, NULL);
}

enum MHD_Result api_send_json(struct MHD_Connection *c, const struct request *rq, unsigned status,
			      struct sp_buf *b)
{
	return api_send_buf(c, rq, status, b, "application/json");
}

/* 405 with the methods the route serves, in the Allow header and in the message. */
static enum MHD_Result send_not_allowed(struct MHD_Connection *c, const struct request *rq,
					const char *allow)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "method not allowed: use %s", allow);
	note_refusal(c, rq, MHD_HTTP_METHOD_NOT_ALLOWED, msg);
	return send_error_msg(rq->api, c, MHD_HTTP_METHOD_NOT_ALLOWED, allow, msg);
}

/* ---------------------------------------------------------------- auth */

static enum token_role authorize(struct api *a, struct MHD_Connection *c, size_t *pos)
{
	const char *tok;
	size_t len;
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	*pos = 0;
	if (apiparse_bearer(h, &tok, &len) != 0)
		return TOKEN_NONE;
	return tokens_check(a->p.tokens, tok, len, pos);
}

const char *api_arg(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result arg_check(void *cls, enum MHD_ValueKind kind, const char *key,
				 size_t key_size, const char *value, size_t value_size)
{
	bool *ok = cls;
	(void)kind;
	*ok = apiparse_arg_ok(key, key_size) && apiparse_arg_ok(value, value_size);
	return *ok ? MHD_YES : MHD_NO;
}

/*
 * Whether every query parameter reads as the C string api_arg() hands out: one
 * with a NUL (%00) would be read cut short ("site=s1%00x" as s1).
 */
static bool args_ok(struct MHD_Connection *c)
{
	bool ok = true;
	MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, arg_check, &ok);
	return ok;
}

/* The body's size as the client declares it; 0 without Content-Length (chunked or none). */
static uint64_t declared_length(struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	if (v == NULL)
		return 0;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	/* libmicrohttpd refuses a malformed one itself; anything odd counts as too large */
	if (end == v || *end != '\0' || errno)
		return UINT64_MAX;
	return n;
}

/*
 * The first call, with the headers only: route, token, declared size and
 * method are judged here, so a request that will be refused is refused
 * before a byte of its body is read (libmicrohttpd then discards the body
 * and closes the connection). MHD_YES without a response: read the body.
 */
static enum MHD_Result on_headers(struct api *a, struct MHD_Connection *c, const char *url,
				  const char *method, struct request *rq)
{
	atomic_fetch_add(&a->p.metrics->http_requests, 1);
	rq->api = a;
	snprintf(rq->method, sizeof(rq->method), "%s", method);
	snprintf(rq->path, sizeof(rq->path), "%s", url);
	rq->route = apiparse_route(url, &rq->id);
	if (rq->route == ROUTE_NOT_FOUND)
		return api_send_error(c, rq, MHD_HTTP_NOT_FOUND, "not found");
	if (apiparse_route_needs_token(rq->route) &&
	    (rq->role = authorize(a, c, &rq->token_pos)) == TOKEN_NONE) {
		atomic_fetch_add(&a->p.metrics->http_unauthorized, 1);
		return api_send_error(c, rq, MHD_HTTP_UNAUTHORIZED, "missing or unknown bearer token");
	}
	/* before the method: 413 is the server-wide limit, whatever the route */
	if (declared_length(c) > BODY_MAX)
		return api_send_error(c, rq, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
	if (rq->route == ROUTE_ALERT_ACK) {
		if (strcmp(method, "POST") != 0)
			return send_not_allowed(c, rq, "POST");
		if (rq->role != TOKEN_OPERATOR)
			return api_send_error(c, rq, MHD_HTTP_FORBIDDEN, "acknowledging needs an operator token");
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		return send_not_allowed(c, rq, "GET, HEAD");
	}
	return MHD_YES;
}

/* The last call: the whole request is in (its body at most BODY_MAX bytes). */
static enum MHD_Result dispatch(struct api *a, struct MHD_Connection *c, const char *url,
				const struct request *rq)
{
	if (rq->route == ROUTE_ALERT_ACK) {
		/* 413 stays the server-wide limit (BODY_MAX); this route's own is a bad request */
		if (rq->body_bytes > ACK_BODY_MAX)
			return api_send_error(c, rq, MHD_HTTP_BAD_REQUEST, "body: at most %d bytes",
					      ACK_BODY_MAX);
	} else if (!args_ok(c)) {
		return api_send_error(c, rq, MHD_HTTP_BAD_REQUEST,
				      "query parameters: no NUL bytes (%%00)");
	}
	return api_route(a, c, rq, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct api *a = cls;
	struct request *rq = *state;
	(void)version;
	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		*state = rq;
		return on_headers(a, c, url, method, rq);
	}
	if (*upload_size > 0) {
		/* keep what the ack route may read; count the rest and discard it */
		rq->body_bytes += *upload_size;
		if (rq->body_bytes > BODY_MAX) {
			/*
			 * A body without Content-Length (chunked) grew past the limit. No
			 * response can be queued while the body arrives (libmicrohttpd),
			 * so the connection is closed now rather than read to its end.
			 */
			note_refusal(c, rq, METRICS_REFUSED_CLOSED, "a chunked request body over 64 KiB");
			return MHD_NO;
		}
		if (rq->body_bytes <= ACK_BODY_MAX && sp_buf_append(&rq->body, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	return dispatch(a, c, url, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode code)
{
	(void)cls;
	(void)c;
	(void)code;
	struct request *rq = *state;
	if (rq)
		sp_buf_free(&rq->body);
	free(rq);
	*state = NULL;
}

/* libmicrohttpd's own messages; its format strings are trusted library constants. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * libmicrohttpd answers some requests by itself, before on_request sees
 * them (docs/protocol.md), and closes a connection over a connection limit
 * as it accepts it. Its log lines are all that is told of those, so they
 * are counted and logged like our own refusals: 1 and the status (or
 * METRICS_REFUSED_LIMIT) when line is one, else 0. Matched on the words
 * 0.9.75 (Debian 12) logs them with; lines worded otherwise stay at DEBUG.
 */
#define MHD_ERROR_ANSWER "Error processing request (HTTP response code is "
#define MHD_LIMIT_CLOSE "Server reached connection limit"

static int mhd_refusal(const char *line, unsigned *status)
{
	if (strncmp(line, MHD_LIMIT_CLOSE, strlen(MHD_LIMIT_CLOSE)) == 0) {
		*status = METRICS_REFUSED_LIMIT;
		return 1;
	}
	if (strncmp(line, MHD_ERROR_ANSWER, strlen(MHD_ERROR_ANSWER)) != 0)
		return 0;
	const char *p = line + strlen(MHD_ERROR_ANSWER);
	char *end;
	unsigned long v = strtoul(p, &end, 10);
	if (end == p || v < 400 || v > 599)
		return 0;
	*status = (unsigned)v;
	return 1;
}

/* What a client did to get libmicrohttpd's answer (docs/protocol.md). */
static const char *mhd_refusal_reason(unsigned status)
{
	switch (status) {
	case METRICS_REFUSED_LIMIT:
		return "closed as accepted: max_connections_per_ip or max_connections reached";
	case 400:
		return "a malformed request line or header";
	case 413:
		return "a Content-Length beyond what can be counted";
	case 414:
		return "a request line longer than the 32 KiB for request line and headers";
	case 431:
		return "headers beyond the 32 KiB for request line and headers";
	case 505:
		return "an HTTP version other than 1.0 or 1.1";
	default:
		return "refused by libmicrohttpd";
	}
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct api *a = cls;
	char line[512];
	unsigned status;
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (!mhd_refusal(line, &status)) {
		SP_DEBUG("api", "libmicrohttpd: %s", line);
		return;
	}
	metrics_count_refused(a->p.metrics, status);
	if (!refusal_log_allowed(a))
		return;
	/* libmicrohttpd names neither the client nor the request here */
	if (status == METRICS_REFUSED_LIMIT)
		SP_INFO("api", "refused a connection: %s", mhd_refusal_reason(status));
	else
		SP_INFO("api", "refused a request (libmicrohttpd's own answer): %u %s", status,
			mhd_refusal_reason(status));
}

/* Reads a whole (small) PEM file. NULL on failure (logged). */
static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	if (f == NULL) {
		SP_ERROR("api", "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	buf = calloc(1, PEM_MAX + 1);
	size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;
	fclose(f);
	if (buf == NULL || n == 0 || n > PEM_MAX) {
		SP_ERROR("api", "%s: empty, unreadable or larger than %d bytes", path, PEM_MAX);
		free(buf);
		return NULL;
	}
	return buf;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

struct api *api_start(const struct api_params *p)
{
	struct api *a = calloc(1, sizeof(*a));
	char host[256], portstr[16];
	int port;
	struct addrinfo hints, *res = NULL;

	if (a == NULL)
		return NULL;
	a->p = *p;
	pthread_mutex_init(&a->counts_lock, NULL);
	pthread_mutex_init(&a->refusal_lock, NULL);
	a->offline_ms = p->conf->store.device_offline_s * 1000;
	atomic_init(&a->response_bytes, 0);
	a->response_budget = (size_t)p->conf->api.response_mb << 20;
	if (sp_conf_parse_hostport(p->conf->api.listen, host, sizeof(host), &port)) {
		SP_ERROR("api", "bad listen address %s", p->conf->api.listen);
		goto fail;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%d", port);
	int gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0) {
		SP_ERROR("api", "cannot resolve listen address %s: %s", host, gai_strerror(gai));
		goto fail;
	}
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	if (res->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	bool tls = p->conf->api.tls_cert_file && *p->conf->api.tls_cert_file;
	if (tls) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			SP_ERROR("api", "this libmicrohttpd has no TLS support: serve HTTPS through a "
					"reverse proxy instead");
			freeaddrinfo(res);
			goto fail;
		}
		a->tls_cert = read_pem(p->conf->api.tls_cert_file);
		a->tls_key = read_pem(p->conf->api.tls_key_file ? p->conf->api.tls_key_file : "");
		if (a->tls_cert == NULL || a->tls_key == NULL) {
			freeaddrinfo(res);
			goto fail;
		}
		flags |= MHD_USE_TLS;
	}
	/* the TLS options come last so that, without TLS, MHD_OPTION_END ends the list early */
	a->daemon = MHD_start_daemon(
		flags, (uint16_t)port, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, res->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)p->conf->api.threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->conf->api.max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)p->conf->api.max_connections_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->conf->api.timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)REQUEST_MEMORY,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
		a, tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, a->tls_cert,
		MHD_OPTION_HTTPS_MEM_KEY, a->tls_key, MHD_OPTION_END);
	freeaddrinfo(res);
	if (a->daemon == NULL) {
		SP_ERROR("api", "cannot listen on %s (address in use, not local, or bad TLS "
				"certificate/key?)",
			 p->conf->api.listen);
		goto fail;
	}
	if (tokens_count(p->tokens) == 0)
		SP_WARN("api", "no API tokens configured: every /api/ request will be refused");
	SP_INFO("api", "listening on %s://%s", tls ? "https" : "http", p->conf->api.listen);
	return a;
fail:
	api_stop(a);
	return NULL;
}

void api_stop(struct api *a)
{
	if (a == NULL)
		return;
	if (a->daemon)
		MHD_stop_daemon(a->daemon);
	free_secret(a->tls_key);
	free(a->tls_cert);
	pthread_mutex_destroy(&a->counts_lock);
	pthread_mutex_destroy(&a->refusal_lock);
	free(a);
}
