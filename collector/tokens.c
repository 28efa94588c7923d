/* tokens.c - bearer tokens as SHA-256 digests (see tokens.h). */
#include "tokens.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST 32

struct entry {
	unsigned char digest[DIGEST];
	enum token_role role;
	size_t pos; /* 1-based place in its configured list */
};

struct tokens {
	struct entry *e;
	size_t n;
};

static int sha256(const void *data, size_t len, unsigned char out[DIGEST])
{
	unsigned int n = 0;
	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == DIGEST ? 0 : -1;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
					      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Turns one configured item into a digest; wipes a plain-text item. */
static int digest_of(char *item, unsigned char out[DIGEST])
{
	size_t n = strlen(item);
	if (strncmp(item, "sha256:", 7) == 0) {
		if (n != TOKENS_HASH_TEXT_LEN)
			return -1;
		for (int i = 0; i < DIGEST; i++) {
			int hi = hexval(item[7 + 2 * i]), lo = hexval(item[8 + 2 * i]);
			if (hi < 0 || lo < 0)
				return -1;
			out[i] = (unsigned char)(hi << 4 | lo);
		}
		return 0;
	}
	int rc = sha256(item, n, out);
	explicit_bzero(item, n); /* the plain text is not needed any more */
	return rc;
}

static int add_list(struct tokens *t, struct sp_conf_list *l, enum token_role role, char *err,
		    size_t errlen)
{
	for (size_t i = 0; i < l->count; i++) {
		struct entry *e = &t->e[t->n];
		if (digest_of(l->items[i], e->digest) != 0) {
			snprintf(err, errlen, "%s token %zu: \"sha256:\" must be followed by 64 hex digits",
				 role == TOKEN_OPERATOR ? "operator" : "viewer", i + 1);
			return -1;
		}
		e->role = role;
		e->pos = i + 1;
		t->n++;
	}
	return 0;
}

struct tokens *tokens_create(struct sp_conf_list *viewers, struct sp_conf_list *operators,
			     char *err, size_t errlen)
{
	struct tokens *t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto nomem;
	t->e = calloc(viewers->count + operators->count + 1, sizeof(*t->e));
	if (t->e == NULL)
		goto nomem;
	if (add_list(t, operators, TOKEN_OPERATOR, err, errlen) ||
	    add_list(t, viewers, TOKEN_VIEWER, err, errlen)) {
		tokens_destroy(t);
		return NULL;
	}
	return t;
nomem:
	snprintf(err, errlen, "out of memory");
	tokens_destroy(t);
	return NULL;
}

void tokens_destroy(struct tokens *t)
{
	if (t == NULL)
		return;
	if (t->e)
		explicit_bzero(t->e, t->n * sizeof(*t->e));
	free(t->e);
	free(t);
}

enum token_role tokens_check(const struct tokens *t, const char *tok, size_t len, size_t *pos)
{
	unsigned char d[DIGEST];
	enum token_role role = TOKEN_NONE;
	size_t at = 0;
	if (pos)
		*pos = 0;
	if (sha256(tok, len, d) != 0)
		return TOKEN_NONE;
	/*
	 * Compare with every entry, without early exit: the time does not tell
	 * whether, or which, entry matched. Operators come first, so on the
	 * (unlikely) same token in both lists the stronger role wins.
	 */
	for (size_t i = 0; i < t->n; i++) {
		unsigned char diff = 0;
		for (int k = 0; k < DIGEST; k++)
			diff |= d[k] ^ t->e[i].digest[k];
		/* branch-free select of the first matching role and its position */
		unsigned match = (unsigned)(diff == 0) & (unsigned)(role == TOKEN_NONE);
		role = (enum token_role)((unsigned)role | (match * (unsigned)t->e[i].role));
		at |= (size_t)match * t->e[i].pos;
	}
	explicit_bzero(d, sizeof(d));
	if (pos)
		*pos = at;
	return role;
}

size_t tokens_count(const struct tokens *t)
{
	return t->n;
}

int tokens_hash_text(const char *token, char *out, size_t outlen)
{
	unsigned char d[DIGEST];
	if (outlen < TOKENS_HASH_TEXT_LEN + 1 || sha256(token, strlen(token), d) != 0)
		return -1;
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < DIGEST; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
	return 0;
}
