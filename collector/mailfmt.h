/*
 * mailfmt.h - the alert mail, as text: headers and body of an RFC 5322
 * message for one alert event (opened, or cleared), ready for SMTP.
 *
 * Pure: no I/O, no clock (the caller passes the time for Date:).
 */
#ifndef SP_COLLECTOR_MAILFMT_H
#define SP_COLLECTOR_MAILFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sitepulse/buf.h"
#include "sitepulse/tz.h"

#define MAILFMT_MSGID_MAX 256
#define MAILFMT_ADDR_MAX 254 /* RFC 5321 §4.5.3.1.3 path limit, less the brackets */

/*
 * One alert event to tell people about (DOMAIN's P1: "repeat until
 * acknowledged": reminders). Strings are UTF-8 (detail may hold °C, names).
 */
struct mail_alert {
	int64_t alert_id;
	bool cleared;            /* the "cleared" mail; else the "opened" one, or: */
	int reminder;            /* > 0 (not cleared): the Nth reminder of an alert not acknowledged */
	const char *rule;        /* as shown, e.g. lift.trapped or lift.fault.E12 */
	const char *site, *dev;
	int32_t port;            /* 0 = none */
	const char *severity;    /* critical, major, minor, warning */
	const char *detail;
	int64_t opened_at;       /* ms, device time */
	int64_t cleared_at;      /* ms; cleared mails only */
	const struct sp_tz *tz;  /* the site's time zone for the times shown; NULL = UTC */
};

struct mail_envelope {
	const char *from;        /* an address like sitepulse@example.org */
	const char *const *to;   /* addresses */
	size_t nto;
};

/*
 * Whether the n bytes at s are a mail address sitepulse can put into a
 * header and hand to SMTP as it is: 1..MAILFMT_ADDR_MAX bytes of printable
 * ASCII (no blanks, no control characters, no UTF-8: no SMTPUTF8), none of
 * < > , ; " ( ) \, and exactly one '@' with something on either side. So
 * no quoted local part ("o.p"@example.org), no comment, no display name.
 * The one rule for the configuration ([smtp] from/to, [site.S] mail_to),
 * the composition and the SMTP envelope. s may be NULL (false).
 */
bool mailfmt_address_ok(const char *s, size_t n);

/*
 * The Message-ID of an alert event, the same every time it is composed
 * (a mail sent again after a crash is recognisably the same mail):
 * "<sitepulse.alert.ID.opened.OPENED_AT@SITE.sitepulse>" (".cleared." for
 * the clear, ".reminder-N." for the Nth reminder). Returns 0, SP_ETOOBIG if
 * cap is too small (MAILFMT_MSGID_MAX always suffices), or SP_EINVAL if the
 * site cannot be part of an address (only [A-Za-z0-9_.-], at most 128
 * bytes; sites are [a-z0-9_-]).
 */
int mailfmt_message_id(const struct mail_alert *a, char *out, size_t cap);

/*
 * Appends the whole message to out: From (the bare address), To, Date
 * (now_ms, RFC 5322, UTC), Message-ID, for a clear or a reminder
 * In-Reply-To and References naming the opened mail, Subject (RFC 2047
 * encoded when not ASCII; e.g. "[sitepulse] CRITICAL lift.trapped at
 * hp-ruijin-07/lift-1", " port 3" appended for a port; "[sitepulse]
 * cleared: ..."; "[sitepulse] REMINDER 2: CRITICAL ... not acknowledged"), MIME-Version,
 * Content-Type text/plain; charset=UTF-8, Content-Transfer-Encoding
 * quoted-printable, Auto-Submitted: auto-generated, X-Auto-Response-Suppress;
 * then the body (quoted-printable). Lines end CRLF and are at most 78
 * characters unless a single address, the Message-ID or a Subject word is
 * longer (never beyond 998). A recipient that is not mailfmt_address_ok
 * is left out of To: (the caller leaves it out of the SMTP envelope too,
 * and says so); the mail is composed for the others. 0 or SP_ENOMEM /
 * SP_ETOOBIG (out's limit) / SP_EINVAL (an envelope without any usable
 * recipient or with more than 256, a From that is not mailfmt_address_ok,
 * a header value with CR, LF or another control character, invalid UTF-8
 * or longer than 200 bytes, a site not fit for the Message-ID); on error
 * out is as it was. The detail may hold anything: invalid UTF-8 and
 * control characters in it are replaced, never refused.
 */
int mailfmt_alert(struct sp_buf *out, const struct mail_alert *a, const struct mail_envelope *env,
		  int64_t now_ms);

#endif
