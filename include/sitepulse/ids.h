/*
 * ids.h - identifiers (CONTRACT §1): site, agent and dev are 1-64 characters
 * of [a-z0-9_-], the first a letter or digit.
 */
#ifndef SP_IDS_H
#define SP_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define SP_ID_MAX 64
#define SP_PORT_MAX 64 /* a charger's ports are numbered 1..64 */

/* True if the len bytes at s form a valid identifier (s need not be NUL-terminated). */
bool sp_id_valid(const char *s, size_t len);

/* Same for a NUL-terminated string. */
bool sp_id_valid_str(const char *s);

#endif
