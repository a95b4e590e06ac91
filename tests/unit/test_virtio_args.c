/* The device options of `wisp run` (vm_config_add_flag): accepted forms,
 * defaults, and a clear message for every mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static char err[256];

static int parse(struct vm_config *va, const char *flag, const char *value)
{
	err[0] = 0;
	return vm_config_add_flag(va, flag, value, err, sizeof(err)) ? -1 : 0;
}

static void test_good(void **state)
{
	(void)state;
	struct vm_config va;
	vm_config_init(&va);
	assert_int_equal(parse(&va, "rng", NULL), 0);
	assert_int_equal(parse(&va, "disk", "/a/b.img"), 0);
	assert_int_equal(parse(&va, "disk", "c.img,ro,id=xyz"), 0);
	assert_int_equal(parse(&va, "net", "tap=tap0"), 0);
	assert_int_equal(parse(&va, "net", "mac=02:aa:bb:cc:dd:ee,tap=tap1"), 0);
	assert_int_equal(parse(&va, "console", "virtio,sock=/tmp/c.sock"), 0);
	assert_int_equal(parse(&va, "vsock", "/tmp/v.sock,cid=42"), 0);
	assert_int_equal(va.ndev, 7);
	assert_int_equal(va.dev[0].kind, VM_DEV_RNG);
	assert_string_equal(va.dev[1].path, "/a/b.img");
	assert_false(va.dev[1].ro);
	assert_null(va.dev[1].id);
	assert_true(va.dev[2].ro);
	assert_string_equal(va.dev[2].id, "xyz");
	assert_string_equal(va.dev[3].tap, "tap0");
	assert_memory_equal(va.dev[3].mac, ((uint8_t[]){2, 0x57, 0x49, 0x53, 0x50, 0}), 6);
	assert_int_equal(va.dev[4].mac[5], 0xee);
	assert_string_equal(va.dev[5].path, "/tmp/c.sock");
	assert_int_equal(va.dev[6].cid, 42);
	assert_string_equal(va.dev[6].path, "/tmp/v.sock");
	vm_config_free(&va);
	assert_int_equal(va.ndev, 0);
}

static void test_defaults(void **state)
{
	(void)state;
	struct vm_config va;
	vm_config_init(&va);
	assert_int_equal(parse(&va, "net", "tap=a"), 0);
	assert_int_equal(parse(&va, "net", "tap=b"), 0); /* second NIC, second MAC */
	assert_int_equal(parse(&va, "vsock", "v.sock"), 0);
	assert_int_equal(parse(&va, "console", "virtio"), 0);
	assert_int_equal(va.dev[1].mac[5], 1);
	assert_int_equal(va.dev[2].cid, 3);
	assert_null(va.dev[3].path);
	vm_config_free(&va);
}

static void expect_error(const char *flag, const char *value, const char *msg)
{
	struct vm_config va;
	vm_config_init(&va);
	if (!strcmp(flag, "console") || !strcmp(flag, "rng"))
		parse(&va, flag, value); /* the first one is fine */
	assert_int_equal(parse(&va, flag, value), -1);
	if (!strstr(err, msg))
		fail_msg("--%s '%s': error '%s' lacks '%s'", flag, value ? value : "", err, msg);
	vm_config_free(&va);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("disk", "",
		     "--disk '': empty value (use --disk PATH[,ro][,id=ID][,bw=RATE][,ops=N])");
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
	expect_error("console", "virtio,sock=", "empty socket path");
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
	struct vm_config va;
	vm_config_init(&va);
	for (int i = 0; i < 8; i++)
		assert_int_equal(parse(&va, "disk", "d.img"), 0);
	assert_int_equal(parse(&va, "disk", "d.img"), -1);
	assert_string_equal(err, "--disk: too many virtio devices (at most 8)");
	vm_config_free(&va);
}

static void test_run_parse_args(void **state)
{
	(void)state;
	struct run_config cfg;
	char *argv[] = {"run", "--rng", "--disk", "x.img,ro", "--vsock", "v.sock", "img.elf", NULL};
	assert_int_equal(run_parse_args(7, argv, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.vm.ndev, 3);
	assert_int_equal(cfg.vm.dev[1].kind, VM_DEV_BLK);
	assert_string_equal(cfg.vm.image, "img.elf");
	vm_config_free(&cfg.vm);
	char *argv2[] = {"run", "img.elf", "--net", NULL};
	assert_int_equal(run_parse_args(3, argv2 + 0, &cfg, err, sizeof(err)), 0);
	vm_config_free(&cfg.vm);
	char *argv3[] = {"run", "--net", NULL};
	assert_int_equal(run_parse_args(2, argv3, &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "run: option '--net' needs a value");
	vm_config_free(&cfg.vm);
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
