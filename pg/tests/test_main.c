/* Runs every group of pg tests; exits non-zero if any check failed. */
#include <stdio.h>

#include "check.h"

static int passed, failed;

int pg_check(const char *name, int ok, const char *file, int line)
{
	if (ok) {
		passed++;
		printf("PASS: %s\n", name);
	} else {
		failed++;
		printf("FAIL: %s (%s:%d)\n", name, file, line);
	}
	fflush(stdout);
	return ok;
}

int main(void)
{
	test_isa();
	test_asm();
	test_props();
	test_random();
	test_recursion();
	printf("pg: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
