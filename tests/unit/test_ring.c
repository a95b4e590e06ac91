/* The console ring: bytes come out in order, wrap-around keeps the newest
 * bytes, a slow reader is told how much it lost, and a reader never trusts
 * the header more than the file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/util.h"

static int tmpdir(char *path)
{
	strcpy(path, "/tmp/wisp-ring-XXXXXX");
	assert_non_null(mkdtemp(path));
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	return fd;
}

static void cleanup(int dfd, const char *path)
{
	unlinkat(dfd, "console", 0);
	close(dfd);
	rmdir(path);
}

static void test_in_order(void **state)
{
	char path[64];
	int dfd = tmpdir(path);
	struct ring w, r;
	assert_int_equal(ring_create(dfd, "console", 16, &w), 0);
	assert_int_equal(ring_open(dfd, "console", &r), 0);
	assert_int_equal(r.size, 16);
	uint64_t pos = 0, lost = 99;
	char buf[64];
	assert_int_equal(ring_read(&r, &pos, buf, sizeof(buf), &lost), 0);
	assert_int_equal(lost, 0);
	ring_write(&w, "hello ", 6);
	ring_write(&w, "world", 5);
	assert_int_equal(ring_read(&r, &pos, buf, sizeof(buf), &lost), 11);
	assert_memory_equal(buf, "hello world", 11);
	assert_int_equal(pos, 11);
	/* Wrap: 11 + 10 = 21 bytes written, the ring holds the last 16. */
	ring_write(&w, "0123456789", 10);
	assert_int_equal(ring_read(&r, &pos, buf, 4, &lost), 4); /* short buffer */
	assert_memory_equal(buf, "0123", 4);
	assert_int_equal(ring_read(&r, &pos, buf, sizeof(buf), &lost), 6);
	assert_memory_equal(buf, "456789", 6);
	assert_int_equal(ring_head(&r), 21);
	ring_close(&r);
	ring_close(&w);
	cleanup(dfd, path);
	(void)state;
}

static void test_lapped_reader(void **state)
{
	char path[64];
	int dfd = tmpdir(path);
	struct ring w, r;
	assert_int_equal(ring_create(dfd, "console", 8, &w), 0);
	assert_int_equal(ring_open(dfd, "console", &r), 0);
	ring_write(&w, "abcdefghijklmnopqrstuvwxyz", 26); /* larger than the ring */
	uint64_t pos = 0, lost = 0;
	char buf[64];
	size_t n = ring_read(&r, &pos, buf, sizeof(buf), &lost);
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "stuvwxyz", 8);
	assert_int_equal(lost, 18);
	assert_int_equal(pos, 26);
	/* A position from the future (reader older than a restart) is clamped. */
	pos = 1000;
	assert_int_equal(ring_read(&r, &pos, buf, sizeof(buf), &lost), 0);
	assert_int_equal(pos, 26);
	ring_close(&r);
	ring_close(&w);
	cleanup(dfd, path);
	(void)state;
}

static void test_bad_files(void **state)
{
	char path[64];
	int dfd = tmpdir(path);
	struct ring r, w;
	assert_int_equal(ring_open(dfd, "console", &r), -ENOENT);
	int fd = openat(dfd, "console", O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "short", 5), 5);
	assert_int_equal(ring_open(dfd, "console", &r), -EINVAL); /* smaller than a header */
	char junk[200] = {0};
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	assert_int_equal(ring_open(dfd, "console", &r), -EINVAL); /* no magic */
	close(fd);
	assert_int_equal(ring_create(dfd, "console", 0, &w), -EINVAL);
	/* A writer that lies about head and size cannot make a reader overrun. */
	assert_int_equal(ring_create(dfd, "console", 32, &w), 0);
	w.hdr->size = 1u << 20;
	w.hdr->head = UINT64_MAX - 3;
	assert_int_equal(ring_open(dfd, "console", &r), 0);
	uint64_t pos = 0, lost = 0;
	char buf[64];
	size_t n = ring_read(&r, &pos, buf, sizeof(buf), &lost);
	assert_true(n <= 32);
	ring_close(&r);
	ring_close(&w);
	cleanup(dfd, path);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_lapped_reader),
		cmocka_unit_test(test_bad_files),
	};
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
