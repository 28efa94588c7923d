/* log.c - see log.h. */
#include "sitepulse/log.h"
#include "sitepulse/error.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The logger's only state: the threshold, read by every thread. */
static atomic_int log_threshold = SP_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void sp_log_set_level(enum sp_log_level level)
{
	atomic_store(&log_threshold, (int)level);
}

bool sp_log_enabled(enum sp_log_level level)
{
	return (int)level <= atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

int sp_log_level_parse(const char *text, enum sp_log_level *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum sp_log_level)i;
			return 0;
		}
	}
	return SP_EINVAL;
}

void sp_log(enum sp_log_level level, const char *component, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;
	va_list ap;

	if (!sp_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %s: ", ts.tv_nsec / 1000000L,
		     level_names[level], component);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	/* Control characters from untrusted input must not forge log lines. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w; /* nowhere left to report a failing stderr */
}

bool sp_ratelimit_allow(struct sp_ratelimit *rl, int64_t now_ms, uint32_t burst,
			int64_t window_ms, uint64_t *suppressed_out)
{
	*suppressed_out = 0;
	if (now_ms - rl->window_start_ms >= window_ms || now_ms < rl->window_start_ms) {
		*suppressed_out = rl->suppressed;
		rl->window_start_ms = now_ms;
		rl->in_window = 0;
		rl->suppressed = 0;
	}
	if (rl->in_window < burst) {
		rl->in_window++;
		return true;
	}
	rl->suppressed++;
	return false;
}
