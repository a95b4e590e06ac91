/* The hash map: every inserted key is found, removed keys are gone, equal
 * hashes chain, and growth keeps every entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util/util.h"

struct item {
	struct hmap_node node;
	char key[16];
	int value;
};

static struct item *find(struct hmap *m, const char *key)
{
	for (struct hmap_node *n = hmap_find(m, hmap_hash_str(key)); n; n = hmap_next_same(n)) {
		struct item *it = (struct item *)n;
		if (!strcmp(it->key, key))
			return it;
	}
	return NULL;
}

static void test_insert_find_remove(void **state)
{
	enum { N = 5000 };
	static struct item items[N];
	struct hmap m;
	assert_int_equal(hmap_init(&m, 4), 0);
	for (int i = 0; i < N; i++) {
		snprintf(items[i].key, sizeof(items[i].key), "vm-%d", i);
		items[i].value = i;
		hmap_insert(&m, &items[i].node, hmap_hash_str(items[i].key));
	}
	assert_int_equal(m.count, N);
	assert_true(m.mask + 1 >= N); /* it grew */
	for (int i = 0; i < N; i++) {
		struct item *it = find(&m, items[i].key);
		assert_non_null(it);
		assert_int_equal(it->value, i);
	}
	assert_null(find(&m, "vm-5000"));
	for (int i = 0; i < N; i += 2)
		hmap_remove(&m, &items[i].node);
	assert_int_equal(m.count, N / 2);
	for (int i = 0; i < N; i++)
		assert_true((find(&m, items[i].key) != NULL) == (i % 2 == 1));
	/* Iteration visits each remaining entry once, and may remove as it goes. */
	size_t b = 0, seen = 0;
	struct hmap_node *n = hmap_next(&m, &b, NULL);
	while (n) {
		struct hmap_node *next = hmap_next(&m, &b, n);
		assert_int_equal(((struct item *)n)->value % 2, 1);
		seen++;
		n = next;
	}
	assert_int_equal(seen, N / 2);
	hmap_destroy(&m);
	(void)state;
}

static void test_same_hash(void **state)
{
	struct item a = {.key = "a"}, b = {.key = "b"}, c = {.key = "c"};
	struct hmap m;
	assert_int_equal(hmap_init(&m, 0), 0);
	hmap_insert(&m, &a.node, 42);
	hmap_insert(&m, &b.node, 42);
	hmap_insert(&m, &c.node, 42 + 16); /* same bucket, other hash */
	int same = 0;
	for (struct hmap_node *n = hmap_find(&m, 42); n; n = hmap_next_same(n))
		same++;
	assert_int_equal(same, 2);
	hmap_remove(&m, &a.node);
	assert_ptr_equal(hmap_find(&m, 42), &b.node);
	assert_ptr_equal(hmap_find(&m, 42 + 16), &c.node);
	assert_null(hmap_find(&m, 7));
	assert_int_not_equal(hmap_hash_u64(1), hmap_hash_u64(2));
	hmap_destroy(&m);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_same_hash),
	};
	return cmocka_run_group_tests_name("hmap", tests, NULL, NULL);
}
