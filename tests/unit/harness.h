/*
 * harness.h - a minimal in-tree unit test harness.
 *
 * Each test file defines test functions and a main() that runs them with
 * RUN(test_fn). CHECK() records a failure with file:line and continues;
 * the process exits 1 if any check failed (ctest reports it).
 */
#ifndef SP_TEST_HARNESS_H
#define SP_TEST_HARNESS_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/*
 * Runs fn in a child process and returns true if it finished within
 * timeout_ms with every check passing. A hang in the code under test then
 * fails one check instead of stalling the whole run.
 */
static inline bool in_child(void (*fn)(void), int timeout_ms)
{
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		harness_failures = 0;
		fn();
		exit(harness_failures ? 1 : 0);
	}
	int status = 0;
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (r < 0)
			return false;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "  child still running after %d ms: killed (hang)\n", timeout_ms);
			return false;
		}
		nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
	}
}

/* Removes a SQLite file and its side files (PATH-wal, PATH-shm). */
static inline void harness_remove_db(const char *path)
{
	char side[1024];
	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

/* The tests' directory: $SP_TEST_TMP (or /tmp), made if needed. */
static inline const char *harness_tmp_dir(void)
{
	const char *dir = getenv("SP_TEST_TMP");
	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		fprintf(stderr, "  cannot create %s: %s\n", dir, strerror(errno));
	return dir;
}

/* A fresh file name "DIR/STEM-PID-N.EXT" in it, without leftovers of the file or its side files. */
static inline void harness_tmp_file(char *out, size_t cap, const char *stem, const char *ext)
{
	static int files;
	snprintf(out, cap, "%s/%s-%d-%d.%s", harness_tmp_dir(), stem, (int)getpid(), ++files, ext);
	harness_remove_db(out);
}

#define HARNESS_EXIT()                                                                     \
	do {                                                                               \
		fprintf(stderr, "%d checks, %d failed\n", harness_checks, harness_failures); \
		return harness_failures || harness_checks == 0 ? 1 : 0;                    \
	} while (0)

#endif
