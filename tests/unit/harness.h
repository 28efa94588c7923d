/*
 * harness.h - a minimal in-tree unit test harness.
 *
 * Each test file defines test functions and a main() that runs them with
 * RUN(test_fn). CHECK() records a failure with file:line and continues;
 * the process exits 1 if any check failed (ctest reports it).
 */
#ifndef SP_TEST_HARNESS_H
#define SP_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

static int harness_failures;
static int harness_checks;

#define CHECK(cond)                                                                        \
	do {                                                                               \
		harness_checks++;                                                          \
		if (!(cond)) {                                                             \
			harness_failures++;                                                \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
				#cond);                                                    \
		}                                                                          \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                 \
	do {                                                                               \
		long long va_ = (long long)(a), vb_ = (long long)(b);                      \
		harness_checks++;                                                          \
		if (va_ != vb_) {                                                          \
			harness_failures++;                                                \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",  \
				__FILE__, __LINE__, #a, #b, va_, vb_);                     \
		}                                                                          \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                 \
	do {                                                                               \
		const char *sa_ = (a), *sb_ = (b);                                         \
		harness_checks++;                                                          \
		if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0) {                 \
			harness_failures++;                                                \
			fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
				__FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)",          \
				sb_ ? sb_ : "(null)");                                     \
		}                                                                          \
	} while (0)

#define RUN(fn)                                                                            \
	do {                                                                               \
		int before_ = harness_failures;                                            \
		fn();                                                                      \
		fprintf(stderr, "%s %s\n", harness_failures == before_ ? "ok  " : "FAIL", #fn); \
	} while (0)

#define HARNESS_EXIT()                                                                     \
	do {                                                                               \
		fprintf(stderr, "%d checks, %d failed\n", harness_checks, harness_failures); \
		return harness_failures || harness_checks == 0 ? 1 : 0;                    \
	} while (0)

#endif
