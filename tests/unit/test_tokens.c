/* test_tokens.c - API tokens kept as SHA-256 digests, checked in constant time. */
#include "harness.h"

#include "tokens.h"

#include <stdlib.h>

static void test_hash_text(void)
{
	char out[TOKENS_HASH_TEXT_LEN + 1];
	CHECK_EQ_INT(tokens_hash_text("abc", out, sizeof(out)), 0);
	/* FIPS 180-2 test vector */
	CHECK_EQ_STR(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_EQ_INT(tokens_hash_text("abc", out, 10), -1);
}

static void test_roles(void)
{
	char v1[] = "viewer-token-0001", v2[] = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char o1[] = "operator-token-01";
	char *vi[] = {v1, v2}, *oi[] = {o1};
	struct sp_conf_list vl = {vi, 2}, ol = {oi, 1};
	char err[128];
	struct tokens *t = tokens_create(&vl, &ol, err, sizeof(err));
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK_EQ_INT(tokens_count(t), 3);
	/* plain text is wiped once hashed; digests given as text are kept as they are */
	CHECK(v1[0] == '\0' && o1[0] == '\0');
	CHECK(strncmp(v2, "sha256:", 7) == 0);
	CHECK_EQ_INT(tokens_check(t, "viewer-token-0001", 17, NULL), TOKEN_VIEWER);
	CHECK_EQ_INT(tokens_check(t, "abc", 3, NULL), TOKEN_VIEWER); /* listed by its digest */
	CHECK_EQ_INT(tokens_check(t, "operator-token-01", 17, NULL), TOKEN_OPERATOR);
	CHECK_EQ_INT(tokens_check(t, "operator-token-0", 16, NULL), TOKEN_NONE);
	CHECK_EQ_INT(tokens_check(t, "operator-token-011", 18, NULL), TOKEN_NONE);
	CHECK_EQ_INT(tokens_check(t, "", 0, NULL), TOKEN_NONE);
	CHECK_EQ_INT(tokens_check(t, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 71, NULL),
		     TOKEN_NONE); /* the digest itself is not a token */
	tokens_destroy(t);
}

/* The position in its own list, never anything derived from the token (acked_by shows it). */
static void test_positions(void)
{
	char v1[] = "viewer-token-0001", v2[] = "viewer-token-0002";
	char o1[] = "operator-token-01", o2[] = "operator-token-02", o3[] = "operator-token-03";
	char *vi[] = {v1, v2}, *oi[] = {o1, o2, o3};
	struct sp_conf_list vl = {vi, 2}, ol = {oi, 3};
	char err[128];
	size_t pos = 99;
	struct tokens *t = tokens_create(&vl, &ol, err, sizeof(err));
	CHECK(t != NULL);
	if (t == NULL)
		return;
	CHECK_EQ_INT(tokens_check(t, "operator-token-01", 17, &pos), TOKEN_OPERATOR);
	CHECK_EQ_INT(pos, 1);
	CHECK_EQ_INT(tokens_check(t, "operator-token-03", 17, &pos), TOKEN_OPERATOR);
	CHECK_EQ_INT(pos, 3);
	CHECK_EQ_INT(tokens_check(t, "viewer-token-0002", 17, &pos), TOKEN_VIEWER);
	CHECK_EQ_INT(pos, 2);
	CHECK_EQ_INT(tokens_check(t, "unknown-token-xx", 16, &pos), TOKEN_NONE);
	CHECK_EQ_INT(pos, 0);
	tokens_destroy(t);
}

static void test_same_token_both_lists(void)
{
	char v[] = "shared-token-xyz", o[] = "shared-token-xyz";
	char *vi[] = {v}, *oi[] = {o};
	struct sp_conf_list vl = {vi, 1}, ol = {oi, 1};
	char err[128];
	struct tokens *t = tokens_create(&vl, &ol, err, sizeof(err));
	CHECK(t != NULL);
	if (t)
		CHECK_EQ_INT(tokens_check(t, "shared-token-xyz", 16, NULL), TOKEN_OPERATOR);
	tokens_destroy(t);
}

static void test_bad_digest(void)
{
	char v[] = "sha256:1234";
	char *vi[] = {v};
	struct sp_conf_list vl = {vi, 1}, ol = {NULL, 0};
	char err[128] = "";
	CHECK(tokens_create(&vl, &ol, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "64 hex") != NULL);
}

static void test_empty(void)
{
	struct sp_conf_list none = {NULL, 0};
	char err[128];
	struct tokens *t = tokens_create(&none, &none, err, sizeof(err));
	CHECK(t != NULL);
	if (t) {
		CHECK_EQ_INT(tokens_count(t), 0);
		CHECK_EQ_INT(tokens_check(t, "anything", 8, NULL), TOKEN_NONE);
	}
	tokens_destroy(t);
}

int main(void)
{
	RUN(test_hash_text);
	RUN(test_roles);
	RUN(test_positions);
	RUN(test_same_token_both_lists);
	RUN(test_bad_digest);
	RUN(test_empty);
	HARNESS_EXIT();
}
