/*
 * signals.h - orderly stop on SIGTERM and SIGINT, shared by every program.
 *
 * sp_stop_requested is the one flag a signal handler sets (the style's
 * only kind of process-wide mutable state); main loops poll it.
 */
#ifndef SP_SIGNALS_H
#define SP_SIGNALS_H

#include <signal.h>

extern volatile sig_atomic_t sp_stop_requested;

/*
 * Makes SIGTERM and SIGINT set sp_stop_requested (interrupting sleeps), and
 * ignores SIGPIPE (a peer closing a socket is an error code, not a death).
 */
void sp_stop_on_signals(void);

#endif
