/* signals.c - see signals.h. */
#include "sitepulse/signals.h"

#include <string.h>

volatile sig_atomic_t sp_stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	sp_stop_requested = 1;
}

void sp_stop_on_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}
