/*
 * tokens.h - the API's bearer tokens, kept only as SHA-256 digests.
 *
 * The configuration may list tokens in plain text or as "sha256:HEX"
 * (print one with `sitepulse-collector --hash-token TOKEN`), so a config
 * file need not hold usable secrets. At start every token becomes a digest
 * and the plain text is wiped from memory (the copies sitepulse made: the
 * configuration list's items here, its working copy in conf.c; not the
 * INI parser's line buffer or stdio's). A presented token is hashed and
 * compared with every digest in constant time. Tokens are never logged.
 *
 * This is the collector's only user of OpenSSL's libcrypto.
 * Threading: immutable after creation; tokens_check is safe from any thread.
 */
#ifndef SP_COLLECTOR_TOKENS_H
#define SP_COLLECTOR_TOKENS_H

#include <stddef.h>

#include "sitepulse/conf.h"

enum token_role { TOKEN_NONE = 0, TOKEN_VIEWER, TOKEN_OPERATOR };

struct tokens;

#define TOKENS_HASH_TEXT_LEN (7 + 64) /* "sha256:" + 64 hex digits */

/*
 * Builds the set from the two lists and wipes their plain-text items.
 * NULL on a malformed "sha256:" entry or no memory (err says which).
 */
struct tokens *tokens_create(struct sp_conf_list *viewers, struct sp_conf_list *operators,
			     char *err, size_t errlen);
void tokens_destroy(struct tokens *t);

/*
 * The role of the presented token (len bytes at tok), TOKEN_NONE if unknown.
 * pos (may be NULL) receives the token's 1-based position in the list that
 * gave it its role (operator_tokens for TOKEN_OPERATOR), 0 if unknown: who
 * acted can be told apart without anything derived from the secret.
 */
enum token_role tokens_check(const struct tokens *t, const char *tok, size_t len, size_t *pos);

size_t tokens_count(const struct tokens *t);

/* Writes "sha256:HEX" of token into out (TOKENS_HASH_TEXT_LEN + 1 bytes). 0 or -1. */
int tokens_hash_text(const char *token, char *out, size_t outlen);

#endif
