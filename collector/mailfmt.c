/*
 * mailfmt.c - the alert mail as an RFC 5322 message (see mailfmt.h).
 *
 * Headers are ASCII: the Subject, which may carry UTF-8 from a rule or
 * device name, is written as RFC 2047 "B" encoded words when it is not
 * plain ASCII; long headers are folded so every line stays under 78
 * characters (RFC 5322 §2.1.1). The body is UTF-8 text, encoded
 * quoted-printable (RFC 2045 §6.7) so that no line is longer than 76
 * characters and the message is 7-bit clean for any relay.
 *
 * Header injection: every header value is checked, and one with CR, LF or
 * any other control character refuses the whole message (SP_EINVAL); no
 * value is ever "cleaned" into a header. Recipients are the exception: one
 * that is not a usable address (mailfmt_address_ok) is left out, never
 * written, and the mail goes to the others; only a mail left without any
 * recipient is refused (no alert mail is lost for one mistyped address).
 * The detail goes only into the body, where the encoding makes any byte
 * harmless: there, invalid UTF-8 becomes U+FFFD and control characters a
 * space, so a mail still goes out.
 *
 * Every line ends CRLF. The SMTP layer (libcurl) does the dot-stuffing; a
 * body line starting with '.' or "From " is encoded anyway (=2E, =46), for
 * relays and mailbox files that treat them specially.
 */
#include "mailfmt.h"

#include "sitepulse/codec.h"
#include "sitepulse/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define FOLD_AT 78 /* RFC 5322: lines SHOULD be at most 78 characters */
#define QP_LINE 76 /* RFC 2045: encoded lines at most 76 characters */
/* Bytes of UTF-8 per encoded word: "Subject: =?UTF-8?B?" + 56 base64 + "?=" is 77 columns. */
#define EW_BYTES 42
#define PART_MAX 200 /* rule, site, dev, severity: longer ones are refused */
#define RCPT_MAX 256
#define SITE_MAX 128 /* so that MAILFMT_MSGID_MAX always holds the Message-ID */

/* ---------------------------------------------------------------- checks */

/* A value that may go into a header: valid UTF-8, no control characters, 1..max bytes. */
static bool header_part_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL || (n = strnlen(s, max + 1)) == 0 || n > max)
		return false;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t l = sp_utf8_len(s + i, n - i);
		if (l == 0 || c < 0x20 || c == 0x7f)
			return false;
		i += l;
	}
	return true;
}

bool mailfmt_address_ok(const char *s, size_t n)
{
	const char *at;

	if (s == NULL || n == 0 || n > MAILFMT_ADDR_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || strchr("<>,;\"()\\", c) != NULL)
			return false;
	}
	/* one '@', with something on either side */
	at = memchr(s, '@', n);
	return at != NULL && at != s && at != s + n - 1 &&
	       memchr(at + 1, '@', n - (size_t)(at + 1 - s)) == NULL;
}

/* A NUL-terminated address (NULL: none): mailfmt_address_ok over its whole length. */
static bool address_ok(const char *s)
{
	return s != NULL && mailfmt_address_ok(s, strnlen(s, MAILFMT_ADDR_MAX + 1));
}

/* The right side of the Message-ID (a dot-atom): [A-Za-z0-9_-] and single inner dots. */
static bool site_ok(const char *s)
{
	size_t n;

	if (s == NULL || (n = strnlen(s, SITE_MAX + 1)) == 0 || n > SITE_MAX)
		return false;
	if (s[0] == '.' || s[n - 1] == '.' || strstr(s, "..") != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* ---------------------------------------------------------------- Message-ID */

int mailfmt_message_id(const struct mail_alert *a, char *out, size_t cap)
{
	int n;

	if (!site_ok(a->site))
		return SP_EINVAL;
	char event[24];
	if (a->cleared)
		snprintf(event, sizeof(event), "cleared");
	else if (a->reminder > 0)
		snprintf(event, sizeof(event), "reminder-%d", a->reminder);
	else
		snprintf(event, sizeof(event), "opened");
	n = snprintf(out, cap, "<sitepulse.alert.%" PRId64 ".%s.%" PRId64 "@%s.sitepulse>",
		     a->alert_id, event, a->opened_at, a->site);
	if (n < 0 || (size_t)n >= cap)
		return SP_ETOOBIG;
	return 0;
}

/* ---------------------------------------------------------------- headers */

static int put_date(struct sp_buf *b, int64_t now_ms)
{
	static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)(now_ms / 1000 - (now_ms % 1000 < 0));
	struct tm tm;

	/* gmtime_r is thread-safe; the names are ours, strftime's would follow the locale */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return SP_EINVAL;
	return sp_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
			     wdays[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
			     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * "From: addr" (the bare address, the same as the envelope's MAIL FROM) and
 * "To: a, b, ..." folded after a comma when a line would pass 78; a
 * recipient that is not a usable address is left out (alert_ok made sure
 * one is left).
 */
static int put_addresses(struct sp_buf *b, const struct mail_envelope *env)
{
	size_t col, shown = 0;
	int rc;

	if ((rc = sp_buf_printf(b, "From: %s\r\nTo: ", env->from)))
		return rc;
	col = 4;
	for (size_t i = 0; i < env->nto; i++) {
		if (!address_ok(env->to[i]))
			continue;
		size_t n = strlen(env->to[i]);
		if (shown++ > 0) {
			bool fold = col + 2 + n > FOLD_AT;
			if ((rc = sp_buf_puts(b, fold ? ",\r\n " : ", ")))
				return rc;
			col = fold ? 1 : col + 2;
		}
		if ((rc = sp_buf_append(b, env->to[i], n)))
			return rc;
		col += n;
	}
	return sp_buf_puts(b, "\r\n");
}

static void upper(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = src[i] >= 'a' && src[i] <= 'z' ? (char)(src[i] - 'a' + 'A') : src[i];
	dst[i] = '\0';
}

/* Plain ASCII subject, folded before a space when a line would pass 78 characters. */
static int put_subject_ascii(struct sp_buf *b, const char *s)
{
	size_t col = 8; /* "Subject:" */
	int rc;

	while (*s) {
		/* a word is the space before it and what follows up to the next space */
		const char *end = strchr(s + 1, ' ');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		if (col > 8 && col + n > FOLD_AT) {
			if ((rc = sp_buf_puts(b, "\r\n")))
				return rc;
			col = 0;
		}
		if ((rc = sp_buf_append(b, s, n)))
			return rc;
		col += n;
		s += n;
	}
	return sp_buf_puts(b, "\r\n");
}

static int put_base64(struct sp_buf *b, const unsigned char *s, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	int rc;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0) |
			     (i + 2 < n ? s[i + 2] : 0);
		q[0] = tab[v >> 18 & 63];
		q[1] = tab[v >> 12 & 63];
		q[2] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		if ((rc = sp_buf_append(b, q, 4)))
			return rc;
	}
	return 0;
}

/*
 * RFC 2047 encoded words, one per line (folded), each holding whole UTF-8
 * characters (§5: a character must not be split between words). Decoders
 * drop the folding between adjacent encoded words, so the text joins up
 * exactly.
 */
static int put_subject_encoded(struct sp_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;
	int rc;

	while (i < n) {
		size_t take = 0;
		while (i + take < n) {
			size_t l = sp_utf8_len((const char *)p + i + take,
					       n - i - take); /* checked valid before */
			if (take + l > EW_BYTES)
				break;
			take += l;
		}
		if ((rc = sp_buf_puts(b, i == 0 ? " =?UTF-8?B?" : "\r\n =?UTF-8?B?")) ||
		    (rc = put_base64(b, p + i, take)) || (rc = sp_buf_puts(b, "?=")))
			return rc;
		i += take;
	}
	return sp_buf_puts(b, "\r\n");
}

static int put_subject(struct sp_buf *b, const struct mail_alert *a)
{
	char sev[PART_MAX + 1], port[24] = "";
	struct sp_buf s = SP_BUF_INIT(0);
	bool ascii = true;
	int rc;

	upper(sev, sizeof(sev), a->severity);
	if (a->port != 0)
		snprintf(port, sizeof(port), " port %" PRId32, a->port);
	if (a->cleared)
		rc = sp_buf_printf(&s, " [sitepulse] cleared: %s at %s/%s%s", a->rule, a->site,
				   a->dev, port);
	else if (a->reminder > 0)
		rc =
		    sp_buf_printf(&s, " [sitepulse] REMINDER %d: %s %s at %s/%s%s not acknowledged",
				  a->reminder, sev, a->rule, a->site, a->dev, port);
	else
		rc = sp_buf_printf(&s, " [sitepulse] %s %s at %s/%s%s", sev, a->rule, a->site,
				   a->dev, port);
	if (rc)
		goto out;
	for (size_t i = 0; i < s.len; i++)
		ascii = ascii && (unsigned char)s.data[i] < 0x80;
	if ((rc = sp_buf_puts(b, "Subject:")))
		goto out;
	/* "=?" in plain text could be taken for an encoded word: encode such a subject too */
	if (ascii && strstr(s.data, "=?") == NULL)
		rc = put_subject_ascii(b, s.data);
	else
		rc = put_subject_encoded(b, s.data + 1);
out:
	sp_buf_free(&s);
	return rc;
}

/* ---------------------------------------------------------------- body */

/* Detail text for the body: invalid UTF-8 becomes U+FFFD, controls (but \n, \t) a space. */
static int put_clean_text(struct sp_buf *b, const char *s)
{
	size_t n = strlen(s);
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0;) {
		unsigned char c = (unsigned char)s[i];
		size_t l = sp_utf8_len(s + i, n - i);
		if (l == 0) {
			rc = sp_buf_puts(b, "\xef\xbf\xbd");
			i++;
		} else if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
			i++; /* CRLF: the LF makes the line break */
		} else if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
			rc = sp_buf_putc(b, ' ');
			i++;
		} else {
			rc = sp_buf_append(b, s + i, l);
			i += l;
		}
	}
	return rc;
}

/* "3 h 5 min 20 s": the nonzero units from the largest. */
static int put_duration(struct sp_buf *b, int64_t ms)
{
	int64_t s = ms > 0 ? ms / 1000 : 0;
	int64_t parts[4] = {s / 86400, s / 3600 % 24, s / 60 % 60, s % 60};
	static const char *const units[4] = {"d", "h", "min", "s"};
	bool any = false;
	int rc = 0;

	for (int i = 0; i < 4 && rc == 0; i++) {
		if (parts[i] == 0 && (any || i < 3))
			continue;
		rc = sp_buf_printf(b, "%s%" PRId64 " %s", any ? " " : "", parts[i], units[i]);
		any = true;
	}
	return rc;
}

/* The text a maintenance crew reads, before transfer encoding. */
static int build_text(struct sp_buf *t, const struct mail_alert *a, int64_t now_ms)
{
	char sev[PART_MAX + 1], port[24] = "", opened[SP_TZ_FMT_MAX], cleared[SP_TZ_FMT_MAX];
	const char *zone = sp_tz_name(a->tz);
	int rc;

	upper(sev, sizeof(sev), a->severity);
	if (a->port != 0)
		snprintf(port, sizeof(port), ", port %" PRId32, a->port);
	sp_tz_format(a->tz, a->opened_at, opened, sizeof(opened));
	if (a->cleared)
		rc = sp_buf_printf(t, "CLEARED: %s at %s, device %s%s (was %s)\n\n", a->rule,
				   a->site, a->dev, port, sev);
	else if (a->reminder > 0)
		rc = sp_buf_printf(t,
				   "REMINDER %d: %s alert at %s, device %s%s: %s\n"
				   "Still active and not acknowledged.\n\n",
				   a->reminder, sev, a->site, a->dev, port, a->rule);
	else
		rc = sp_buf_printf(t, "%s alert at %s, device %s%s: %s\n\n", sev, a->site, a->dev,
				   port, a->rule);
	if (rc)
		return rc;
	if (a->detail && a->detail[0]) {
		if ((rc = put_clean_text(t, a->detail)) || (rc = sp_buf_puts(t, "\n\n")))
			return rc;
	}
	if ((rc = sp_buf_printf(t, "Opened:  %s (%s)\n", opened, zone)))
		return rc;
	if (a->cleared) {
		sp_tz_format(a->tz, a->cleared_at, cleared, sizeof(cleared));
		if ((rc = sp_buf_printf(t, "Cleared: %s (%s)\nLasted:  ", cleared, zone)) ||
		    (rc = put_duration(t, a->cleared_at - a->opened_at)) ||
		    (rc = sp_buf_printf(t,
					"\nAlert:   %" PRId64
					" (acknowledge in the operations room if not done yet)\n",
					a->alert_id)))
			return rc;
		return 0;
	}
	if (a->reminder > 0) {
		if ((rc = sp_buf_puts(t, "Active:  ")) ||
		    (rc = put_duration(t, now_ms - a->opened_at)))
			return rc;
		return sp_buf_printf(t,
				     "\nAlert:   %" PRId64
				     " (acknowledge in the operations room to stop "
				     "these reminders)\n",
				     a->alert_id);
	}
	return sp_buf_printf(t, "Alert:   %" PRId64 " (acknowledge in the operations room)\n",
			     a->alert_id);
}

/*
 * Quoted-printable, RFC 2045 §6.7: printable ASCII but '=' as itself, the
 * rest as =XX; a space or tab ending a line encoded (relays strip them);
 * a soft break ("=" CRLF) before a token would pass column 75, so lines,
 * the '=' included, are at most 76 characters; an =XX is never split.
 * Text line breaks (LF) become CRLF.
 */
static int put_qp(struct sp_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		char tok[3];
		size_t w = 1;

		if (c == '\n') {
			rc = sp_buf_puts(b, "\r\n");
			col = 0;
			continue;
		}
		bool line_end = i + 1 == n || s[i + 1] == '\n';
		bool literal =
		    (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end);
		if (col == 0 &&
		    (c == '.' || (c == 'F' && n - i >= 5 && memcmp(s + i, "From ", 5) == 0)))
			literal = false;
		if (literal) {
			tok[0] = (char)c;
		} else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 15];
			w = 3;
		}
		if (col + w > QP_LINE - 1) {
			if ((rc = sp_buf_puts(b, "=\r\n")))
				break;
			col = 0;
			/* this token opens the new line: a '.' or "From " is encoded there too */
			if (w == 1 && (c == '.' || (c == 'F' && n - i >= 5 &&
						    memcmp(s + i, "From ", 5) == 0))) {
				tok[0] = '=';
				tok[1] = hex[c >> 4];
				tok[2] = hex[c & 15];
				w = 3;
			}
		}
		rc = sp_buf_append(b, tok, w);
		col += w;
	}
	if (rc == 0 && col > 0)
		rc = sp_buf_puts(b, "\r\n");
	return rc;
}

/* ---------------------------------------------------------------- message */

static bool alert_ok(const struct mail_alert *a, const struct mail_envelope *env)
{
	if (!header_part_ok(a->rule, PART_MAX) || !header_part_ok(a->dev, PART_MAX) ||
	    !header_part_ok(a->severity, PART_MAX) || !site_ok(a->site))
		return false;
	if (env->to == NULL || env->nto == 0 || env->nto > RCPT_MAX || !address_ok(env->from))
		return false;
	/* a recipient we cannot write is left out of To: (put_addresses); one must be left */
	for (size_t i = 0; i < env->nto; i++) {
		if (address_ok(env->to[i]))
			return true;
	}
	return false;
}

int mailfmt_alert(struct sp_buf *out, const struct mail_alert *a, const struct mail_envelope *env,
		  int64_t now_ms)
{
	struct sp_buf text = SP_BUF_INIT(0);
	char id[MAILFMT_MSGID_MAX];
	size_t start = out->len;
	int rc;

	if (!alert_ok(a, env))
		return SP_EINVAL;
	if (mailfmt_message_id(a, id, sizeof(id)) != 0) {
		rc = SP_EINVAL;
		goto out;
	}
	/* folded before the id when the line would pass 78 (a reminder's id is longer) */
	if ((rc = put_addresses(out, env)) || (rc = put_date(out, now_ms)) ||
	    (rc = sp_buf_printf(out, "Message-ID:%s%s\r\n",
				strlen("Message-ID: ") + strlen(id) > FOLD_AT ? "\r\n " : " ", id)))
		goto out;
	if (a->cleared || a->reminder > 0) {
		/* threads the clear and the reminders under their alert in mail readers */
		struct mail_alert opened = *a;
		char oid[MAILFMT_MSGID_MAX];
		opened.cleared = false;
		opened.reminder = 0;
		if (mailfmt_message_id(&opened, oid, sizeof(oid)) != 0) {
			rc = SP_EINVAL;
			goto out;
		}
		if ((rc = sp_buf_printf(out, "In-Reply-To: %s\r\nReferences: %s\r\n", oid, oid)))
			goto out;
	}
	if ((rc = put_subject(out, a)) ||
	    (rc = sp_buf_puts(out, "MIME-Version: 1.0\r\n"
				   "Content-Type: text/plain; charset=UTF-8\r\n"
				   "Content-Transfer-Encoding: quoted-printable\r\n"
				   "Auto-Submitted: auto-generated\r\n"
				   "X-Auto-Response-Suppress: All\r\n"
				   "\r\n")))
		goto out;
	if ((rc = build_text(&text, a, now_ms)) || (rc = put_qp(out, text.data, text.len)))
		goto out;
out:
	sp_buf_free(&text);
	if (rc) {
		/* nothing half-written stays behind */
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}
