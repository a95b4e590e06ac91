/* The virtio options of `wisp run`: accepted forms, defaults, and a clear
 * message for every mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static char err[256];

static int parse(struct virtio_args *va, const char *flag, const char *value)
{
	err[0] = 0;
	return virtio_args_parse(va, flag, value, err, sizeof(err));
}

static void test_good(void **state)
{
	(void)state;
	struct virtio_args va = {0};
	assert_int_equal(parse(&va, "rng", NULL), 0);
	assert_int_equal(parse(&va, "disk", "/a/b.img"), 0);
	assert_int_equal(parse(&va, "disk", "c.img,ro,id=xyz"), 0);
	assert_int_equal(parse(&va, "net", "tap=tap0"), 0);
	assert_int_equal(parse(&va, "net", "mac=02:aa:bb:cc:dd:ee,tap=tap1"), 0);
	assert_int_equal(parse(&va, "console", "virtio,sock=/tmp/c.sock"), 0);
	assert_int_equal(parse(&va, "vsock", "/tmp/v.sock,cid=42"), 0);
	assert_int_equal(va.n, 7);
	assert_int_equal(va.a[0].kind, VARG_RNG);
	assert_string_equal(va.a[1].blk.path, "/a/b.img");
	assert_false(va.a[1].blk.ro);
	assert_null(va.a[1].blk.id);
	assert_true(va.a[2].blk.ro);
	assert_string_equal(va.a[2].blk.id, "xyz");
	assert_string_equal(va.a[3].net.tap, "tap0");
	assert_memory_equal(va.a[3].net.mac, ((uint8_t[]){2, 0x57, 0x49, 0x53, 0x50, 0}), 6);
	assert_int_equal(va.a[4].net.mac[5], 0xee);
	assert_int_equal(va.a[3].net.tap_fd, -1);
	assert_string_equal(va.a[5].con.sock_path, "/tmp/c.sock");
	assert_int_equal(va.a[6].vsock.cid, 42);
	assert_string_equal(va.a[6].vsock.uds_path, "/tmp/v.sock");
	virtio_args_free(&va);
	assert_int_equal(va.n, 0);
}

static void test_defaults(void **state)
{
	(void)state;
	struct virtio_args va = {0};
	assert_int_equal(parse(&va, "net", "tap=a"), 0);
	assert_int_equal(parse(&va, "net", "tap=b"), 0); /* second NIC, second MAC */
	assert_int_equal(parse(&va, "vsock", "v.sock"), 0);
	assert_int_equal(parse(&va, "console", "virtio"), 0);
	assert_int_equal(va.a[1].net.mac[5], 1);
	assert_int_equal(va.a[2].vsock.cid, 3);
	assert_null(va.a[3].con.sock_path);
	virtio_args_free(&va);
}

static void expect_error(const char *flag, const char *value, const char *msg)
{
	struct virtio_args va = {0};
	if (strcmp(flag, "rng") == 0 || strcmp(flag, "console") == 0)
		parse(&va, flag, value); /* the first one is fine */
	assert_int_equal(parse(&va, flag, value), -1);
	assert_non_null(strstr(err, msg));
	virtio_args_free(&va);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("disk", "", "--disk '': empty value (use --disk PATH[,ro][,id=ID])");
	expect_error("disk", ",ro", "empty value");
	expect_error("disk", "x,rw", "unknown option 'rw'");
	expect_error("disk", "x,ro=1", "unknown option 'ro'");
	expect_error("disk", "x,id=", "id must be 1 to 20 bytes");
	expect_error("disk", "x,id=123456789012345678901", "id must be 1 to 20 bytes");
	expect_error("disk", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "too many fields");
	expect_error("net", "eth0", "unknown option 'eth0'");
	expect_error("net", "mac=02:00:00:00:00:01", "tap=NAME is required");
	expect_error("net", "tap=", "interface name must be 1 to 15 bytes");
	expect_error("net", "tap=0123456789abcdef", "interface name must be 1 to 15 bytes");
	expect_error("net", "tap=a/b", "interface name");
	expect_error("net", "tap=t,mac=02:00:00:00:00", "bad MAC address");
	expect_error("net", "tap=t,mac=02:00:00:00:00:0g", "bad MAC address");
	expect_error("net", "tap=t,mac=02:00:00:00:00:00:11", "bad MAC address");
	expect_error("net", "tap=t,mac=03:00:00:00:00:00", "MAC address is multicast");
	expect_error("console", "virtio", "--console given twice");
	expect_error("console", "serial", "only 'virtio' is known");
	expect_error("console", "virtio,sock=", "unknown option 'sock'");
	expect_error("vsock", "v,cid=0", "cid must be a number from 3 to 4294967294");
	expect_error("vsock", "v,cid=2", "cid must be");
	expect_error("vsock", "v,cid=4294967295", "cid must be");
	expect_error("vsock", "v,cid=x", "cid must be");
	expect_error("vsock", "v,port=3", "unknown option 'port'");
	expect_error("rng", NULL, "--rng given twice");
	expect_error("floppy", "x", "unknown device option --floppy");
}

static void test_too_many(void **state)
{
	(void)state;
	struct virtio_args va = {0};
	for (int i = 0; i < VIRTIO_MAX_DEVICES; i++)
		assert_int_equal(parse(&va, "disk", "d.img"), 0);
	assert_int_equal(parse(&va, "disk", "d.img"), -1);
	assert_string_equal(err, "--disk: too many virtio devices (at most 8)");
	virtio_args_free(&va);
}

static void test_run_parse_args(void **state)
{
	(void)state;
	struct run_config cfg;
	char *argv[] = {"run", "--rng", "--disk", "x.img,ro", "--vsock", "v.sock", "img.elf", NULL};
	assert_int_equal(run_parse_args(7, argv, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.virtio.n, 3);
	assert_int_equal(cfg.virtio.a[1].kind, VARG_DISK);
	assert_string_equal(cfg.image, "img.elf");
	virtio_args_free(&cfg.virtio);
	free(cfg.cmdline);
	char *argv2[] = {"run", "img.elf", "--net", NULL};
	assert_int_equal(run_parse_args(3, argv2 + 0, &cfg, err, sizeof(err)), 0);
	free(cfg.cmdline);
	char *argv3[] = {"run", "--net", NULL};
	assert_int_equal(run_parse_args(2, argv3, &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "run: option '--net' needs a value");
	virtio_args_free(&cfg.virtio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),	       cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),	       cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_run_parse_args),
	};
	return cmocka_run_group_tests_name("virtio options", tests, NULL, NULL);
}
