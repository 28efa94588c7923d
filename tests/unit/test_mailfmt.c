/*
 * test_mailfmt.c - the alert mail (collector/mailfmt.c), read back the way
 * a mail reader would: every line CRLF and within 998 bytes (78 for our
 * headers), headers unfolded and each present once, the Message-ID stable
 * and distinct for opened and cleared, the quoted-printable body decoding
 * to the text a crew reads, RFC 2047 subjects decoding to their UTF-8, and
 * header injection refused with the output buffer left as it was.
 */
#include "harness.h"
#include "mailfmt.h"

#include "sitepulse/error.h"

#include <ctype.h>
#include <inttypes.h>
#include <strings.h>

#define MAXH 32

struct parsed {
	char *name[MAXH];
	char *value[MAXH]; /* unfolded */
	int n;
	char *body; /* quoted-printable decoded, CRLF turned into LF */
	size_t body_len;
	int max_header_line, max_body_line;
	bool crlf_only;
};

static void parsed_free(struct parsed *p)
{
	for (int i = 0; i < p->n; i++) {
		free(p->name[i]);
		free(p->value[i]);
	}
	free(p->body);
	memset(p, 0, sizeof(*p));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 2045: our encoder writes upper case only */
}

/* Quoted-printable decode of a CRLF body; NULL if malformed. */
static char *qp_decode(const char *s, size_t n, size_t *out_len)
{
	char *o = malloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == '=') {
			if (i + 2 >= n) {
				free(o);
				return NULL;
			}
			if (s[i + 1] == '\r' && s[i + 2] == '\n') {
				i += 3; /* soft break */
				continue;
			}
			if (hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
				free(o);
				return NULL;
			}
			o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 3;
		} else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			o[k++] = '\n';
			i += 2;
		} else {
			o[k++] = s[i++];
		}
	}
	o[k] = '\0';
	*out_len = k;
	return o;
}

static bool parse(const char *msg, size_t len, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	p->crlf_only = true;
	/* line structure of the whole message */
	size_t line_start = 0;
	bool in_body = false;
	for (size_t i = 0; i < len; i++) {
		if (msg[i] == '\r' && (i + 1 >= len || msg[i + 1] != '\n'))
			p->crlf_only = false;
		if (msg[i] == '\n') {
			if (i == 0 || msg[i - 1] != '\r')
				p->crlf_only = false;
			int l = (int)(i - 1 - line_start);
			if (in_body) {
				if (l > p->max_body_line)
					p->max_body_line = l;
			} else if (l > p->max_header_line) {
				p->max_header_line = l;
			}
			if (l == 0)
				in_body = true;
			line_start = i + 1;
		}
	}
	if (line_start != len)
		p->crlf_only = false; /* the last line is not terminated */
	const char *sep = strstr(msg, "\r\n\r\n");
	if (sep == NULL)
		return false;
	/* headers, unfolded */
	const char *h = msg;
	while (h < sep + 2) {
		const char *eol = strstr(h, "\r\n");
		if (h[0] == ' ' || h[0] == '\t') {
			if (p->n == 0)
				return false;
			char *v = p->value[p->n - 1];
			size_t vl = strlen(v), add = (size_t)(eol - h);
			if (vl == 0) { /* folded right after the colon: the value starts here */
				while (add > 0 && (*h == ' ' || *h == '\t'))
					h++, add--;
			}
			v = realloc(v, vl + add + 1);
			memcpy(v + vl, h, add);
			v[vl + add] = '\0';
			p->value[p->n - 1] = v;
		} else {
			const char *colon = memchr(h, ':', (size_t)(eol - h));
			if (colon == NULL || p->n == MAXH)
				return false;
			p->name[p->n] = strndup(h, (size_t)(colon - h));
			const char *v = colon + 1;
			while (*v == ' ')
				v++;
			p->value[p->n] = strndup(v, (size_t)(eol - v));
			p->n++;
		}
		h = eol + 2;
	}
	const char *body = sep + 4;
	p->body = qp_decode(body, len - (size_t)(body - msg), &p->body_len);
	return p->body != NULL;
}

static int count(const struct parsed *p, const char *name)
{
	int c = 0;
	for (int i = 0; i < p->n; i++)
		c += strcasecmp(p->name[i], name) == 0;
	return c;
}

static const char *header(const struct parsed *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (strcasecmp(p->name[i], name) == 0)
			return p->value[i];
	return NULL;
}

static int b64val(char c)
{
	const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *at = c ? strchr(tab, c) : NULL;
	return at ? (int)(at - tab) : -1;
}

static bool utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = s[i] < 0x80             ? 1
			   : (s[i] & 0xe0) == 0xc0 ? 2
			   : (s[i] & 0xf0) == 0xe0 ? 3
			   : (s[i] & 0xf8) == 0xf0 ? 4
						   : 0;
		if (l == 0 || i + l > n)
			return false;
		for (size_t k = 1; k < l; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += l;
	}
	return true;
}

/*
 * RFC 2047 decoding of an unfolded header value: encoded words
 * "=?UTF-8?B?...?=", whitespace between two of them dropped. Each word must
 * hold whole UTF-8 characters (*split set otherwise). Caller frees.
 */
static char *decode_2047(const char *v, bool *split, int *words)
{
	size_t n = strlen(v);
	char *o = malloc(n + 1);
	size_t k = 0;
	bool prev_word = false;
	*split = false;
	*words = 0;
	for (size_t i = 0; i < n;) {
		if (strncmp(v + i, "=?UTF-8?B?", 10) == 0) {
			const char *end = strstr(v + i + 10, "?=");
			if (end == NULL)
				break;
			size_t start = k;
			uint32_t acc = 0;
			int bits = 0;
			for (const char *c = v + i + 10; c < end; c++) {
				if (*c == '=')
					break;
				acc = acc << 6 | (uint32_t)b64val(*c);
				bits += 6;
				if (bits >= 8) {
					bits -= 8;
					o[k++] = (char)(acc >> bits & 0xff);
				}
			}
			if (!utf8_ok((unsigned char *)o + start, k - start))
				*split = true;
			if ((size_t)(end + 2 - (v + i)) > 75)
				*split = true; /* an encoded word longer than 75 characters */
			(*words)++;
			i = (size_t)(end + 2 - v);
			prev_word = true;
			continue;
		}
		if (prev_word && (v[i] == ' ' || v[i] == '\t')) {
			size_t j = i;
			while (j < n && (v[j] == ' ' || v[j] == '\t'))
				j++;
			if (strncmp(v + j, "=?", 2) == 0) {
				i = j; /* whitespace between encoded words is not text */
				continue;
			}
		}
		prev_word = false;
		o[k++] = v[i++];
	}
	o[k] = '\0';
	return o;
}

/* 2026-11-28T09:33:20Z, the example's opening */
#define T_OPEN INT64_C(1795858400000)

static struct sp_tz *shanghai;

static struct mail_alert sample(void)
{
	struct mail_alert a = {
	    .alert_id = 17,
	    .cleared = false,
	    .rule = "lift.trapped",
	    .site = "hp-ruijin-07",
	    .dev = "lift-1",
	    .port = 0,
	    .severity = "critical",
	    .detail =
		"passenger trapped 20 s: door closed, car stopped between floors near floor 3",
	    .opened_at = T_OPEN,
	    .cleared_at = 0,
	    .tz = shanghai,
	};
	return a;
}

static const char *const two_to[] = {"ops@example.org", "crew7@example.org"};
static const struct mail_envelope env2 = {"sitepulse@example.org", two_to, 2};

static void check_common(const struct parsed *p)
{
	static const char *const once[] = {
	    "From",           "To",           "Date",         "Message-ID",
	    "Subject",        "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	    "Auto-Submitted",
	};
	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
		if (count(p, once[i]) != 1)
			fprintf(stderr, "  header %s present %d times\n", once[i],
				count(p, once[i]));
		CHECK_EQ_INT(count(p, once[i]), 1);
	}
	CHECK(p->crlf_only);
	CHECK(p->max_header_line <= 78);
	CHECK(p->max_body_line <= 76);
	CHECK_EQ_STR(header(p, "From"), "sitepulse@example.org");
	CHECK_EQ_STR(header(p, "MIME-Version"), "1.0");
	CHECK_EQ_STR(header(p, "Content-Type"), "text/plain; charset=UTF-8");
	CHECK_EQ_STR(header(p, "Content-Transfer-Encoding"), "quoted-printable");
	CHECK_EQ_STR(header(p, "Auto-Submitted"), "auto-generated");
	/* headers are ASCII */
	for (int i = 0; i < p->n; i++)
		for (const char *c = p->value[i]; *c; c++)
			CHECK((unsigned char)*c < 0x80 && (unsigned char)*c >= 0x20);
}

static void test_opened(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p;

	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN + 2000), 0);
	CHECK(parse(out.data, out.len, &p));
	check_common(&p);
	CHECK_EQ_STR(header(&p, "Date"), "Sat, 28 Nov 2026 09:33:22 +0000");
	CHECK_EQ_STR(header(&p, "To"), "ops@example.org, crew7@example.org");
	CHECK_EQ_STR(header(&p, "Subject"),
		     "[sitepulse] CRITICAL lift.trapped at hp-ruijin-07/lift-1");
	CHECK_EQ_STR(header(&p, "Message-ID"),
		     "<sitepulse.alert.17.opened.1795858400000@hp-ruijin-07.sitepulse>");
	CHECK_EQ_INT(count(&p, "In-Reply-To"), 0);
	CHECK_EQ_STR(
	    p.body, "CRITICAL alert at hp-ruijin-07, device lift-1: lift.trapped\n"
		    "\n"
		    "passenger trapped 20 s: door closed, car stopped between floors near floor 3\n"
		    "\n"
		    "Opened:  2026-11-28T17:33:20+08:00 (Asia/Shanghai)\n"
		    "Alert:   17 (acknowledge in the operations room)\n");
	parsed_free(&p);
	sp_buf_free(&out);
}

static void test_reminder(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p;

	a.reminder = 2;
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN + 20 * 60 * 1000 + 1500), 0);
	CHECK(parse(out.data, out.len, &p));
	check_common(&p);
	CHECK_EQ_STR(header(&p, "Message-ID"),
		     "<sitepulse.alert.17.reminder-2.1795858400000@hp-ruijin-07.sitepulse>");
	/* threaded under the alert's first mail */
	CHECK_EQ_STR(header(&p, "In-Reply-To"),
		     "<sitepulse.alert.17.opened.1795858400000@hp-ruijin-07.sitepulse>");
	CHECK_EQ_STR(header(&p, "References"),
		     "<sitepulse.alert.17.opened.1795858400000@hp-ruijin-07.sitepulse>");
	CHECK_EQ_STR(header(&p, "Subject"), "[sitepulse] REMINDER 2: CRITICAL lift.trapped at "
					    "hp-ruijin-07/lift-1 not acknowledged");
	CHECK_EQ_STR(
	    p.body, "REMINDER 2: CRITICAL alert at hp-ruijin-07, device lift-1: lift.trapped\n"
		    "Still active and not acknowledged.\n"
		    "\n"
		    "passenger trapped 20 s: door closed, car stopped between floors near floor 3\n"
		    "\n"
		    "Opened:  2026-11-28T17:33:20+08:00 (Asia/Shanghai)\n"
		    "Active:  20 min 1 s\n"
		    "Alert:   17 (acknowledge in the operations room to stop these reminders)\n");
	parsed_free(&p);
	sp_buf_free(&out);
}

static void test_cleared(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p;
	char opened_id[MAILFMT_MSGID_MAX], cleared_id[MAILFMT_MSGID_MAX];

	a.rule = "port.over_temp";
	a.dev = "chg-1";
	a.port = 3;
	a.detail = "port 3 at 72.5 \xc2\xb0"
		   "C (limit 60 \xc2\xb0"
		   "C)";
	CHECK_EQ_INT(mailfmt_message_id(&a, opened_id, sizeof(opened_id)), 0);
	a.cleared = true;
	a.cleared_at = T_OPEN + (12 * 60 + 5) * 1000;
	CHECK_EQ_INT(mailfmt_message_id(&a, cleared_id, sizeof(cleared_id)), 0);
	CHECK(strcmp(opened_id, cleared_id) != 0);
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, a.cleared_at + 500), 0);
	CHECK(parse(out.data, out.len, &p));
	check_common(&p);
	CHECK_EQ_STR(header(&p, "Subject"),
		     "[sitepulse] cleared: port.over_temp at hp-ruijin-07/chg-1 port 3");
	CHECK_EQ_STR(header(&p, "Message-ID"), cleared_id);
	CHECK_EQ_STR(header(&p, "In-Reply-To"), opened_id);
	CHECK_EQ_STR(header(&p, "References"), opened_id);
	CHECK_EQ_STR(
	    p.body, "CLEARED: port.over_temp at hp-ruijin-07, device chg-1, port 3 (was CRITICAL)\n"
		    "\n"
		    "port 3 at 72.5 \xc2\xb0"
		    "C (limit 60 \xc2\xb0"
		    "C)\n"
		    "\n"
		    "Opened:  2026-11-28T17:33:20+08:00 (Asia/Shanghai)\n"
		    "Cleared: 2026-11-28T17:45:25+08:00 (Asia/Shanghai)\n"
		    "Lasted:  12 min 5 s\n"
		    "Alert:   17 (acknowledge in the operations room if not done yet)\n");
	/* the degree sign travels encoded */
	CHECK(strstr(out.data, "=C2=B0C") != NULL);
	parsed_free(&p);
	sp_buf_free(&out);
}

static void test_message_id(void)
{
	struct sp_buf one = SP_BUF_INIT(0), two = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p1, p2;
	char id[MAILFMT_MSGID_MAX], small[20];

	/* the same event composed twice (a resend after a crash): the same Message-ID */
	CHECK_EQ_INT(mailfmt_alert(&one, &a, &env2, T_OPEN + 1000), 0);
	CHECK_EQ_INT(mailfmt_alert(&two, &a, &env2, T_OPEN + 3600 * 1000), 0);
	CHECK(parse(one.data, one.len, &p1));
	CHECK(parse(two.data, two.len, &p2));
	CHECK_EQ_STR(header(&p1, "Message-ID"), header(&p2, "Message-ID"));
	CHECK(strcmp(header(&p1, "Date"), header(&p2, "Date")) != 0);
	CHECK_EQ_INT(mailfmt_message_id(&a, id, sizeof(id)), 0);
	CHECK_EQ_STR(header(&p1, "Message-ID"), id);
	parsed_free(&p1);
	parsed_free(&p2);
	/* another alert, another id; too small a buffer; a site unfit for an address */
	struct mail_alert b = a;
	b.alert_id = 18;
	char id2[MAILFMT_MSGID_MAX];
	CHECK_EQ_INT(mailfmt_message_id(&b, id2, sizeof(id2)), 0);
	CHECK(strcmp(id, id2) != 0);
	CHECK_EQ_INT(mailfmt_message_id(&a, small, sizeof(small)), SP_ETOOBIG);
	b.site = "bad site";
	CHECK_EQ_INT(mailfmt_message_id(&b, id2, sizeof(id2)), SP_EINVAL);
	b.site = "a>b";
	CHECK_EQ_INT(mailfmt_message_id(&b, id2, sizeof(id2)), SP_EINVAL);
	/* the longest site accepted still fits */
	char longsite[129];
	memset(longsite, 'x', 128);
	longsite[128] = '\0';
	b.site = longsite;
	b.alert_id = INT64_MIN;
	b.opened_at = INT64_MIN;
	b.cleared = true;
	CHECK_EQ_INT(mailfmt_message_id(&b, id2, sizeof(id2)), 0);
	sp_buf_free(&one);
	sp_buf_free(&two);
}

static void check_subject_roundtrip(struct mail_alert *a, const char *want, int min_words)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct parsed p;
	bool split;
	int words;

	CHECK_EQ_INT(mailfmt_alert(&out, a, &env2, T_OPEN), 0);
	CHECK(parse(out.data, out.len, &p));
	check_common(&p);
	const char *raw = header(&p, "Subject");
	CHECK(raw && strncmp(raw, "=?UTF-8?B?", 10) == 0);
	char *dec = decode_2047(raw ? raw : "", &split, &words);
	CHECK_EQ_STR(dec, want);
	CHECK(!split);
	CHECK(words >= min_words);
	free(dec);
	parsed_free(&p);
	sp_buf_free(&out);
}

static void test_subject_utf8(void)
{
	struct mail_alert a = sample();

	a.rule = "port.over_temp\xc2\xb0"
		 "C";
	check_subject_roundtrip(&a,
				"[sitepulse] CRITICAL port.over_temp\xc2\xb0"
				"C at hp-ruijin-07/lift-1",
				1);

	/* a long one: several encoded words, none splitting a character, every line < 78 */
	char dev[200] = "";
	for (int i = 0; i < 20; i++)
		strcat(dev, "\xe7\x94\xb5\xe6\xa2\xaf"); /* 电梯, 3 bytes each */
	strcat(dev, "-7");
	a.rule = "lift.trapped";
	a.dev = dev;
	a.port = 12;
	char want[400];
	snprintf(want, sizeof(want), "[sitepulse] CRITICAL lift.trapped at hp-ruijin-07/%s port 12",
		 dev);
	check_subject_roundtrip(&a, want, 4);

	/* ASCII holding "=?" would read as an encoded word: encoded too */
	a.dev = "lift=?1";
	a.port = 0;
	check_subject_roundtrip(&a, "[sitepulse] CRITICAL lift.trapped at hp-ruijin-07/lift=?1", 1);
}

static void test_long_ascii_subject_folds(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p;
	char dev[65], site[65];

	memset(dev, 'd', 64);
	dev[64] = '\0';
	memset(site, 's', 64);
	site[64] = '\0';
	a.dev = dev;
	a.site = site;
	a.rule = "charger.fault.SOME-VERY-LONG-FAULT-CODE-FROM-THE-DEVICE-0123456789";
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), 0);
	CHECK(parse(out.data, out.len, &p));
	CHECK(p.crlf_only);
	CHECK(p.max_header_line <= 998);
	char want[400];
	snprintf(want, sizeof(want), "[sitepulse] CRITICAL %s at %s/%s", a.rule, site, dev);
	CHECK_EQ_STR(header(&p, "Subject"), want);
	parsed_free(&p);
	sp_buf_free(&out);
}

static void test_many_recipients(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p;
	char addrs[60][40];
	const char *to[60];
	char want[4096] = "";

	for (int i = 0; i < 60; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "crew-member-%02d@example.org", i);
		to[i] = addrs[i];
		if (i)
			strcat(want, ", ");
		strcat(want, addrs[i]);
	}
	struct mail_envelope env = {"sitepulse@example.org", to, 60};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), 0);
	CHECK(parse(out.data, out.len, &p));
	check_common(&p);
	/* folded after commas: unfolded, the list reads as written */
	CHECK_EQ_STR(header(&p, "To"), want);
	CHECK(strstr(out.data, ",\r\n crew-member-") != NULL);
	parsed_free(&p);
	sp_buf_free(&out);
}

static void test_injection_refused(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a;
	const char *bad_to[] = {"ops@example.org", "x@example.org\r\nBcc: evil@example.org"};
	const char *bad_to2[] = {"ops@example.org\n"};
	const char *bad_to3[] = {"Ops <ops@example.org>"};
	struct mail_envelope env;

	sp_buf_puts(&out, "kept");
	a = sample();
	a.rule = "lift.trapped\r\nBcc: evil@example.org";
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), SP_EINVAL);
	a = sample();
	a.dev = "lift-1\nX-Evil: 1";
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), SP_EINVAL);
	a = sample();
	a.severity = "critical\r";
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), SP_EINVAL);
	a = sample();
	a.site = "hp\r\nX: y";
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), SP_EINVAL);
	a = sample();
	a.rule = "lift.\x01trapped";
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), SP_EINVAL);
	a = sample();
	a.dev = "lift-\xff";
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), SP_EINVAL);
	a = sample();
	a.rule = NULL;
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), SP_EINVAL);
	a = sample();
	env = (struct mail_envelope){"sitepulse@example.org\r\nBcc: x@y", two_to, 2};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), SP_EINVAL);
	env = (struct mail_envelope){"sitepulse@example.org", bad_to2, 1};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), SP_EINVAL);
	env = (struct mail_envelope){"sitepulse@example.org", bad_to3, 1};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), SP_EINVAL);
	env = (struct mail_envelope){"sitepulse@example.org", two_to, 0};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), SP_EINVAL);
	env = (struct mail_envelope){NULL, two_to, 2};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), SP_EINVAL);
	/* nothing was appended by any of them */
	CHECK_EQ_STR(out.data, "kept");
	CHECK_EQ_INT(out.len, 4);

	/* an injecting recipient among good ones is left out, never written: the mail goes */
	env = (struct mail_envelope){"sitepulse@example.org", bad_to, 2};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), 0);
	CHECK(strstr(out.data, "Bcc") == NULL && strstr(out.data, "evil") == NULL);
	CHECK(strstr(out.data, "\r\nTo: ops@example.org\r\n") != NULL);
	sp_buf_reset(&out);
	sp_buf_puts(&out, "kept");

	/* a limit reached midway leaves the buffer as it was too */
	struct sp_buf lim = SP_BUF_INIT(300);
	sp_buf_puts(&lim, "kept");
	a = sample();
	CHECK_EQ_INT(mailfmt_alert(&lim, &a, &env2, T_OPEN), SP_ETOOBIG);
	CHECK_EQ_STR(lim.data, "kept");
	sp_buf_free(&lim);
	sp_buf_free(&out);
}

/* The one address rule (configuration, composition, envelope): mailfmt_address_ok. */
static void test_address_rule(void)
{
	static const char *const good[] = {"ops@example.org", "a@b", "o.p+alerts@example.org",
					   "crew_7-x@mail.example.cn", "x!#$%&'*/=?^`{|}~@example.org"};
	static const char *const bad[] = {
	    "", "ops", "@example.org", "ops@", "a@b@c", "ops @example.org", "ops@example.org ",
	    "\xe8\xbf\x90\xe7\xbb\xb4@example.cn", /* UTF-8: no SMTPUTF8 */
	    "ops@\xe4\xbe\x8b\xe5\xad\x90.cn", "\"o.p\"@example.org", "ops(c)@example.org",
	    "o\\p@example.org", "<ops@example.org>", "a@example.org,b@example.org",
	    "a@example.org;b", "ops@example.org\r\nBcc: x@y", "ops\t@example.org", "ops\x7f@x"};
	char addr[MAILFMT_ADDR_MAX + 2];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (!mailfmt_address_ok(good[i], strlen(good[i])))
			fprintf(stderr, "  refused: %s\n", good[i]);
		CHECK(mailfmt_address_ok(good[i], strlen(good[i])));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (mailfmt_address_ok(bad[i], strlen(bad[i])))
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(!mailfmt_address_ok(bad[i], strlen(bad[i])));
	}
	CHECK(!mailfmt_address_ok(NULL, 0));
	/* n bounds the check: a NUL inside is refused, what follows n is not looked at */
	CHECK(!mailfmt_address_ok("a@b\0c", 5));
	CHECK(mailfmt_address_ok("a@b, c@d", 3));
	/* 254 bytes at most (RFC 5321 path, less the brackets) */
	memset(addr, 'a', sizeof(addr));
	memcpy(addr + MAILFMT_ADDR_MAX - 12, "@example.org", 12);
	addr[MAILFMT_ADDR_MAX] = '\0';
	CHECK(mailfmt_address_ok(addr, MAILFMT_ADDR_MAX));
	memset(addr, 'a', sizeof(addr));
	memcpy(addr + MAILFMT_ADDR_MAX - 11, "@example.org", 13);
	CHECK_EQ_INT(strlen(addr), MAILFMT_ADDR_MAX + 1);
	CHECK(!mailfmt_address_ok(addr, MAILFMT_ADDR_MAX + 1));
}

/*
 * A recipient the mail cannot carry (UTF-8, a quoted local part, a comment,
 * a backslash, too long) does not cost the others their mail: it is left
 * out of To: and the mail is composed for the rest. Only a mail with no
 * usable recipient at all is refused, with the buffer as it was.
 */
static void test_bad_recipient_left_out(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	char longaddr[MAILFMT_ADDR_MAX + 2];
	struct parsed p;

	memset(longaddr, 'a', sizeof(longaddr));
	memcpy(longaddr + MAILFMT_ADDR_MAX + 1 - 12, "@example.org", 13); /* 255 bytes */
	const char *to[] = {"\xe8\xbf\x90\xe7\xbb\xb4@example.cn", "ops@example.org",
			    "\"o.p\"@example.org", "ops(c)@example.org", "o\\p@example.org",
			    longaddr, "crew7@example.org"};
	struct mail_envelope env = {"sitepulse@example.org", to, sizeof(to) / sizeof(to[0])};

	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), 0);
	if (out.len > 0) { /* (the old rule refused it: nothing to read) */
		CHECK(parse(out.data, out.len, &p));
		check_common(&p);
		CHECK_EQ_STR(header(&p, "To"), "ops@example.org, crew7@example.org");
		parsed_free(&p);
	}

	/* one good, one bad (the configuration example of the defect) */
	const char *two[] = {"ops@example.org", "\xe8\xbf\x90\xe7\xbb\xb4@example.cn"};
	env = (struct mail_envelope){"sitepulse@example.org", two, 2};
	sp_buf_reset(&out);
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), 0);
	if (out.len > 0) {
		CHECK(parse(out.data, out.len, &p));
		CHECK_EQ_STR(header(&p, "To"), "ops@example.org");
		parsed_free(&p);
	}

	/* nobody left: refused, nothing written */
	const char *none[] = {"\"o.p\"@example.org", "\xe8\xbf\x90\xe7\xbb\xb4@example.cn"};
	env = (struct mail_envelope){"sitepulse@example.org", none, 2};
	sp_buf_reset(&out);
	sp_buf_puts(&out, "kept");
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), SP_EINVAL);
	CHECK_EQ_STR(out.data, "kept");
	/* a sender we cannot write still refuses the mail */
	env = (struct mail_envelope){"\"s\"@example.org", two, 2};
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env, T_OPEN), SP_EINVAL);
	CHECK_EQ_STR(out.data, "kept");
	sp_buf_free(&out);
}

static void test_long_detail(void)
{
	struct sp_buf out = SP_BUF_INIT(0), detail = SP_BUF_INIT(0), want = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p;

	/* words, a 300-byte word, '=' signs, UTF-8, trailing blanks, lines opening with '.' and
	 * "From " */
	for (int i = 0; i < 40; i++)
		sp_buf_printf(&detail,
			      "reading %d = %d.%d \xc2\xb0"
			      "C \xe7\x94\xb5\xe6\xa2\xaf ",
			      i, i * 7, i % 10);
	for (int i = 0; i < 300; i++)
		sp_buf_putc(&detail, (char)('a' + i % 26));
	sp_buf_puts(&detail, " \t\n.dot line\nFrom here on \n\ttabbed\t\n=3D literal\n");
	sp_buf_puts(&detail, "..\n.\nFrom \n");
	/* what the body must read: the same, with the clean-ups of mailfmt.c */
	sp_buf_puts(&want, "CRITICAL alert at hp-ruijin-07, device lift-1: lift.trapped\n\n");
	sp_buf_append(&want, detail.data, detail.len);
	/* invalid UTF-8 -> U+FFFD, controls -> space, CRLF -> LF */
	sp_buf_puts(&detail, "bad \xff byte, bell\x07, crlf\r\nend");
	sp_buf_puts(&want, "bad \xef\xbf\xbd byte, bell , crlf\nend");
	sp_buf_puts(&want, "\n\nOpened:  2026-11-28T17:33:20+08:00 (Asia/Shanghai)\n"
			   "Alert:   17 (acknowledge in the operations room)\n");
	a.detail = detail.data;
	CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), 0);
	CHECK(parse(out.data, out.len, &p));
	check_common(&p);
	CHECK_EQ_INT(p.body_len, want.len);
	CHECK(p.body && memcmp(p.body, want.data, want.len) == 0);
	/* the body is 7-bit, no line ends in a blank, no line opens with '.' or "From " */
	const char *body = strstr(out.data, "\r\n\r\n") + 4;
	for (const char *c = body; *c; c++)
		CHECK((unsigned char)*c < 0x80);
	int bad_line = 0;
	for (const char *l = body; *l;) {
		const char *eol = strstr(l, "\r\n");
		if (eol > l && (eol[-1] == ' ' || eol[-1] == '\t'))
			bad_line++;
		if (l[0] == '.' || strncmp(l, "From ", 5) == 0)
			bad_line++;
		l = eol + 2;
	}
	CHECK_EQ_INT(bad_line, 0);
	parsed_free(&p);
	sp_buf_free(&out);
	sp_buf_free(&detail);
	sp_buf_free(&want);
}

static void test_utc_and_durations(void)
{
	struct sp_buf out = SP_BUF_INIT(0);
	struct mail_alert a = sample();
	struct parsed p;
	static const struct {
		int64_t ms;
		const char *text;
	} d[] = {
	    {0, "0 s"},
	    {999, "0 s"},
	    {20000, "20 s"},
	    {3600000, "1 h"},
	    {(2 * 3600 + 10) * 1000, "2 h 10 s"},
	    {(3 * 86400 + 4 * 3600 + 5 * 60 + 6) * 1000LL, "3 d 4 h 5 min 6 s"},
	    {-5000, "0 s"},
	};

	a.tz = NULL;
	a.cleared = true;
	a.detail = NULL;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		sp_buf_reset(&out);
		a.cleared_at = T_OPEN + d[i].ms;
		CHECK_EQ_INT(mailfmt_alert(&out, &a, &env2, T_OPEN), 0);
		CHECK(parse(out.data, out.len, &p));
		char line[64];
		snprintf(line, sizeof(line), "Lasted:  %s\n", d[i].text);
		CHECK(p.body && strstr(p.body, line) != NULL);
		CHECK(p.body && strstr(p.body, "Opened:  2026-11-28T09:33:20Z (UTC)\n") != NULL);
		/* no detail: no empty paragraph */
		CHECK(p.body && strstr(p.body, "\n\n\n") == NULL);
		parsed_free(&p);
	}
	sp_buf_free(&out);
}

int main(void)
{
	shanghai = sp_tz_load("Asia/Shanghai");
	CHECK(shanghai != NULL);
	RUN(test_opened);
	RUN(test_reminder);
	RUN(test_cleared);
	RUN(test_message_id);
	RUN(test_subject_utf8);
	RUN(test_long_ascii_subject_folds);
	RUN(test_many_recipients);
	RUN(test_injection_refused);
	RUN(test_address_rule);
	RUN(test_bad_recipient_left_out);
	RUN(test_long_detail);
	RUN(test_utc_and_durations);
	sp_tz_free(shanghai);
	HARNESS_EXIT();
}
