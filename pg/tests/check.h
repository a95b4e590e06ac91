/* A tiny test harness: each check prints PASS or FAIL with its name, and
 * main prints the totals. */
#ifndef PG_TESTS_CHECK_H
#define PG_TESTS_CHECK_H

#include "pg.h"

/* Records one check's result and prints its PASS/FAIL line. */
#define CHECK(name, cond) pg_check((name), (cond), __FILE__, __LINE__)

/* Prints "PASS: name" or "FAIL: name (file:line)"; returns ok. */
int pg_check(const char *name, int ok, const char *file, int line);

/* The test groups, one per file. */
void test_isa(void);
void test_asm(void);
void test_props(void);
void test_random(void);
void test_recursion(void);

#endif
