#pragma once
/*
 * test.h: the in-house unit test harness (as libuv's and Redis's). Each
 * tests/unit/test_<module>.c is its own executable: TEST(name) defines a case,
 * RUN(name) runs it, and TEST_MAIN() prints "N passed, N failed" and exits non-zero
 * on any failure. ASSERT_* stop the current case and record where it failed.
 */
#include <stdio.h>
#include <string.h>

__attribute__((unused)) static int test_failed_, test_passed_, test_failed_now_;

#define TEST(name) static void test_##name(void)
#define RUN(name)                                       \
	do {                                            \
		test_failed_now_ = 0;                   \
		test_##name();                          \
		if (test_failed_now_) {                 \
			test_failed_++;                 \
			printf("not ok - %s\n", #name); \
		} else {                                \
			test_passed_++;                 \
			printf("ok - %s\n", #name);     \
		}                                       \
		fflush(stdout);                         \
	} while (0)
#define FAIL_(fmt, ...)                                                        \
	do {                                                                   \
		printf("  %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__); \
		test_failed_now_ = 1;                                          \
		return;                                                        \
	} while (0)
#define ASSERT(c)                                          \
	do {                                               \
		if (!(c))                                  \
			FAIL_("assertion failed: %s", #c); \
	} while (0)
#define ASSERT_EQ(a, b)                                                  \
	do {                                                             \
		long long a_ = (long long)(a), b_ = (long long)(b);      \
		if (a_ != b_)                                            \
			FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_); \
	} while (0)
#define ASSERT_STR(a, b)                                                                \
	do {                                                                            \
		const char *a_ = (a), *b_ = (b);                                        \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                  \
			FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
			      b_ ? b_ : "(null)");                                      \
	} while (0)
#define TEST_MAIN()                                                           \
	do {                                                                  \
		printf("%d passed, %d failed\n", test_passed_, test_failed_); \
		return test_failed_ ? 1 : 0;                                  \
	} while (0)
