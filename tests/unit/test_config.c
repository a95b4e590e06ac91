/* The VM configuration's JSON form (docs/config.md): defaults, a round trip
 * that keeps every field, one line naming the field for every mistake, and
 * the restore's check of device host sides. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/config.h"

static char err[1024];

static int parse(const char *json, struct vm_config *c)
{
	err[0] = 0;
	return vm_config_from_json(json, strlen(json), NULL, c, err, sizeof(err));
}

static void test_defaults(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse("{\"image\": \"/u.elf\"}", &c), 0);
	assert_int_equal(c.kind, VM_KIND_UNIKERNEL);
	assert_int_equal(c.mem, WISP_DEFAULT_MEM);
	assert_int_equal(c.cpus, 1);
	char *s = vm_config_to_json(&c);
	assert_string_equal(s, "{\"version\":1,\"kind\":\"unikernel\",\"mem\":33554432,\"cpus\":1,"
			       "\"image\":\"/u.elf\",\"args\":[],\"devices\":[]}");
	free(s);
	vm_config_free(&c);
	assert_int_equal(parse("{\"kernel\": \"/bz\"}", &c), 0);
	assert_int_equal(c.kind, VM_KIND_LINUX);
	assert_int_equal(c.mem, LINUX_DEFAULT_MEM);
	s = vm_config_to_json(&c);
	assert_non_null(strstr(s, "\"cmdline\":\"" LINUX_DEFAULT_CMDLINE "\""));
	free(s);
	vm_config_free(&c);
}

static void test_round_trip(void **state)
{
	(void)state;
	static const char full[] =
		"{\"version\":1,\"kind\":\"linux\",\"name\":\"web1\",\"mem\":268435456,\"cpus\":2,"
		"\"kernel\":\"/k/bzImage\",\"initrd\":\"/k/initrd\",\"cmdline\":\"console=ttyS0 "
		"quiet\",\"devices\":[{\"type\":\"rng-device\",\"seed\":7},{\"type\":\"virtio-"
		"rng\"},{\"type\":\"virtio-blk\",\"path\":\"/d.img\",\"read_only\":true,\"id\":"
		"\"root\",\"size\":1048576},{\"type\":\"virtio-net\",\"tap\":\"tap0\",\"mac\":"
		"\"02:57:49:53:50:00\"},{\"type\":\"virtio-console\",\"socket\":\"/c.sock\"},{"
		"\"type\":\"virtio-vsock\",\"socket\":\"/v.sock\",\"cid\":42}]}";
	struct vm_config c, d;
	assert_int_equal(parse(full, &c), 0);
	char *s = vm_config_to_json(&c);
	assert_string_equal(s, full);
	/* and once more, through a copy */
	assert_int_equal(vm_config_copy(&d, &c), 0);
	char *t = vm_config_to_json(&d);
	assert_string_equal(t, full);
	free(s);
	free(t);
	vm_config_free(&d);
	vm_config_free(&c);
	/* a unikernel with arguments and a size string */
	assert_int_equal(
		parse("{\"image\":\"/e.elf\",\"args\":[\"a\",\"b c\"],\"mem\":\"16M\"}", &c), 0);
	s = vm_config_to_json(&c);
	assert_string_equal(s, "{\"version\":1,\"kind\":\"unikernel\",\"mem\":16777216,\"cpus\":1,"
			       "\"image\":\"/e.elf\",\"args\":[\"a\",\"b c\"],\"devices\":[]}");
	free(s);
	vm_config_free(&c);
}

/* Every bad field: one line, naming it. */
static void test_bad_fields(void **state)
{
	(void)state;
	static const struct {
		const char *json, *want;
	} bad[] = {
		{"[1]", "configuration: must be a JSON object"},
		{"{", "not JSON"},
		{"{\"image\":\"/u\",\"image\":\"/v\"}", "not JSON"},
		{"{\"image\":\"/u\",\"memory\":3}", "memory: unknown field"},
		{"{\"image\":\"/u\",\"version\":2}", "version: must be 1"},
		{"{\"image\":\"/u\",\"kind\":\"bsd\"}", "kind: must be \"unikernel\" or \"linux\""},
		{"{\"image\":\"/u\",\"name\":7}", "name: must be a string"},
		{"{\"image\":\"/u\",\"name\":\"-x\"}", "name '-x': use 1 to 63"},
		{"{\"image\":\"/u\",\"name\":\"0123456789ab\"}", "not 12 hex digits"},
		{"{\"image\":\"/u\",\"mem\":\"lots\"}", "mem 'lots': not a size"},
		{"{\"image\":\"/u\",\"mem\":1024}", "mem '1024': must be between 2 MiB and 64 GiB"},
		{"{\"image\":\"/u\",\"mem\":3145729}",
		 "mem '3145729': must be a multiple of 4 KiB"},
		{"{\"image\":\"/u\",\"mem\":true}", "mem: must be a size string"},
		{"{\"image\":\"/u\",\"cpus\":0}", "cpus: must be a number from 1 to 64"},
		{"{\"image\":\"/u\",\"cpus\":65}", "cpus: must be a number from 1 to 64"},
		{"{\"image\":\"/u\",\"cpus\":2}", "cpus: unikernels run on exactly 1 vCPU"},
		{"{\"image\":\"\"}", "image: must not be empty"},
		{"{\"image\":1}", "image: must be a string"},
		{"{}", "image: required for a unikernel"},
		{"{\"kind\":\"linux\"}", "kernel: required for a Linux VM"},
		{"{\"kernel\":\"/k\",\"image\":\"/u\"}", "image: a Linux VM boots 'kernel'"},
		{"{\"kernel\":\"/k\",\"args\":[\"a\"]}", "args: a Linux VM takes 'cmdline'"},
		{"{\"image\":\"/u\",\"initrd\":\"/i\"}", "initrd: only for a Linux VM"},
		{"{\"image\":\"/u\",\"cmdline\":\"x\"}", "cmdline: only for a Linux VM"},
		{"{\"kernel\":\"/k\",\"cmdline\":3}", "cmdline: must be a string"},
		{"{\"image\":\"/u\",\"args\":\"a b\"}", "args: must be an array"},
		{"{\"image\":\"/u\",\"args\":[1]}", "args[0]: must be a string"},
		{"{\"image\":\"/u\",\"devices\":{}}", "devices: must be an array of objects"},
		{"{\"image\":\"/u\",\"devices\":[1]}", "devices[0]: must be an object"},
		{"{\"image\":\"/u\",\"devices\":[{}]}", "devices[0].type: required"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"floppy\"}]}",
		 "devices[0].type: 'floppy' is not known"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-rng\",\"path\":\"/x\"}]}",
		 "devices[0].path: unknown field for a virtio-rng device"},
		{"{\"image\":\"/"
		 "u\",\"devices\":[{\"type\":\"virtio-rng\"},{\"type\":\"virtio-rng\"}]}",
		 "devices[1] given twice"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-blk\"}]}",
		 "devices[0].path: required for a virtio-blk device"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-blk\",\"path\":3}]}",
		 "devices[0].path: must be a string"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-blk\",\"path\":\"/d\","
		 "\"read_only\":1}]}",
		 "devices[0].read_only: must be true or false"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-blk\",\"path\":\"/d\",\"id\":"
		 "\"123456789012345678901\"}]}",
		 "devices[0].id: id must be 1 to 20 bytes"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-blk\",\"path\":\"/"
		 "d\",\"size\":1}]}",
		 "devices[0].size: must be a number of bytes"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-net\"}]}",
		 "devices[0].tap: required for a virtio-net device"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-net\",\"tap\":\"a/b\"}]}",
		 "devices[0].tap: interface name must be 1 to 15 bytes"},
		{"{\"image\":\"/"
		 "u\",\"devices\":[{\"type\":\"virtio-net\",\"tap\":\"t\",\"mac\":\"x\"}]}",
		 "devices[0].mac: bad MAC address"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-net\",\"tap\":\"t\",\"mac\":"
		 "\"01:00:00:00:00:00\"}]}",
		 "devices[0].mac: MAC address is multicast"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-console\",\"socket\":\"\"}]}",
		 "devices[0].socket: empty socket path"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-vsock\",\"socket\":\"/v\","
		 "\"cid\":2}]}",
		 "devices[0].cid: cid must be a number from 3"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-vsock\",\"socket\":\"/v\","
		 "\"cid\":-1}]}",
		 "devices[0].cid: must be a non-negative integer"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-vsock\"}]}",
		 "devices[0].socket: required for a virtio-vsock device"},
		{"{\"image\":\"/u\",\"devices\":[{\"type\":\"rng-device\",\"seed\":4294967296}]}",
		 "devices[0].seed: the seed must be a number from 0 to 4294967295"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vm_config c;
		if (parse(bad[i].json, &c) == 0)
			fail_msg("%s was accepted", bad[i].json);
		if (!strstr(err, bad[i].want))
			fail_msg("%s: error '%s' lacks '%s'", bad[i].json, err, bad[i].want);
		if (strchr(err, '\n'))
			fail_msg("%s: error '%s' is more than one line", bad[i].json, err);
		assert_null(c.image); /* freed on error */
	}
}

/* The caller's own keys are skipped, not refused. */
static void test_extra_keys(void **state)
{
	(void)state;
	static const char *const extra[] = {"snapshot", "verify", NULL};
	struct vm_config c;
	const char *j = "{\"image\":\"/u\",\"verify\":true}";
	assert_int_equal(vm_config_from_json(j, strlen(j), extra, &c, err, sizeof(err)), 0);
	vm_config_free(&c);
}

/* A restore gives the host sides again; every mismatch is one line. */
static void test_host_sides(void **state)
{
	(void)state;
	struct vm_config rec, given;
	assert_int_equal(parse("{\"kernel\":\"/k\",\"devices\":[{\"type\":\"virtio-rng\"},"
			       "{\"type\":\"virtio-blk\",\"path\":\"/old.img\",\"size\":4096},"
			       "{\"type\":\"virtio-net\",\"tap\":\"old0\",\"mac\":"
			       "\"02:00:00:00:00:09\"}]}",
			       &rec),
			 0);
	/* nothing given: one line per device with a host side */
	vm_config_init(&given);
	assert_int_equal(vm_config_take_host_sides(&rec, &given, err, sizeof(err)), 2);
	assert_non_null(strstr(err, "device 1: the snapshot has a virtio-blk: give its host side "
				    "again (--disk"));
	assert_non_null(strstr(err, "\ndevice 2: the snapshot has a virtio-net"));
	/* wrong order, and one too many */
	assert_int_equal(vm_config_add_flag(&given, "net", "tap=t1", err, sizeof(err)), 0);
	assert_int_equal(vm_config_add_flag(&given, "disk", "/new.img", err, sizeof(err)), 0);
	assert_int_equal(vm_config_add_flag(&given, "vsock", "/v.sock", err, sizeof(err)), 0);
	given.dev[1].size = 4096;
	assert_int_equal(vm_config_take_host_sides(&rec, &given, err, sizeof(err)), 3);
	assert_non_null(strstr(err, "device 1: the snapshot has a virtio-blk there, not the "
				    "virtio-net given"));
	assert_non_null(strstr(err, "device 2: the snapshot has a virtio-net there, not the "
				    "virtio-blk given"));
	assert_non_null(strstr(err, "virtio-vsock (host device 2 given): the snapshot has no "
				    "more devices"));
	vm_config_free(&given);
	/* a disk of another size */
	vm_config_init(&given);
	assert_int_equal(vm_config_add_flag(&given, "disk", "/new.img", err, sizeof(err)), 0);
	assert_int_equal(vm_config_add_flag(&given, "net", "tap=t1", err, sizeof(err)), 0);
	given.dev[0].size = 8192;
	assert_int_equal(vm_config_take_host_sides(&rec, &given, err, sizeof(err)), 1);
	assert_string_equal(err, "device 1: disk '/new.img' has 8192 bytes; the snapshot's had "
				 "4096");
	/* right: the given host sides replace the recorded ones, the guest's
	 * side (MAC) stays */
	given.dev[0].size = 4096;
	assert_int_equal(vm_config_take_host_sides(&rec, &given, err, sizeof(err)), 0);
	assert_string_equal(rec.dev[1].path, "/new.img");
	assert_string_equal(rec.dev[2].tap, "t1");
	assert_int_equal(rec.dev[2].mac[5], 9);
	vm_config_free(&given);
	vm_config_free(&rec);
}

static void test_mem_check(void **state)
{
	(void)state;
	assert_int_equal(vm_check_mem(64ull << 20, "mem", "64M", err, sizeof(err)), 0);
	assert_int_not_equal(vm_check_mem(1 << 20, "--mem", "1M", err, sizeof(err)), 0);
	assert_string_equal(err, "--mem '1M': must be between 2 MiB and 64 GiB");
}

/* Found by fuzz_config: a flag's path that is not UTF-8 vanished from the
 * JSON form (a snapshot's, a daemon VM's): refused instead, by name. */
static void test_not_utf8(void **state)
{
	(void)state;
	struct vm_config c;
	vm_config_init(&c);
	assert_int_not_equal(vm_config_add_flag(&c, "disk", "/s\x8e\x89,ro", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "not valid UTF-8"));
	assert_int_equal(vm_config_add_flag(&c, "disk", "/d\xc3\xa9.img", err, sizeof(err)), 0);
	c.image = strdup("/u\xed\xa0\x80.elf"); /* a surrogate */
	assert_int_not_equal(vm_config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(err, "image: not valid UTF-8");
	free(c.image);
	c.image = strdup("/u.elf");
	c.args = calloc(2, sizeof(char *));
	c.args[0] = strdup("\xc0\xaf"); /* overlong '/' */
	c.nargs = 1;
	assert_int_not_equal(vm_config_finish(&c, err, sizeof(err)), 0);
	assert_string_equal(err, "args: not valid UTF-8");
	free(c.args[0]);
	c.args[0] = strdup("\xf0\x9f\x98\x80");
	assert_int_equal(vm_config_finish(&c, err, sizeof(err)), 0);
	vm_config_free(&c);
}

/* Rate limits: JSON numbers and size strings, the flag spelling, defaults
 * left unwritten, the round trip, and each mistake named. */
static void test_rate_limits(void **state)
{
	(void)state;
	struct vm_config c;
	assert_int_equal(parse("{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-blk\","
			       "\"path\":\"/d\",\"bandwidth\":\"10M\",\"ops\":200,"
			       "\"ops_burst\":20},{\"type\":\"virtio-net\",\"tap\":\"t0\","
			       "\"bandwidth\":4096,\"bandwidth_burst\":\"1K\"}]}",
			       &c),
			 0);
	assert_int_equal(c.dev[0].limit.bw, 10 << 20);
	assert_int_equal(c.dev[0].limit.bw_burst, 0);
	assert_int_equal(c.dev[0].limit.ops, 200);
	assert_int_equal(c.dev[0].limit.ops_burst, 20);
	assert_int_equal(c.dev[1].limit.bw, 4096);
	assert_int_equal(c.dev[1].limit.bw_burst, 1024);
	char *s = vm_config_to_json(&c);
	assert_non_null(strstr(s, "\"path\":\"/d\",\"read_only\":false,\"bandwidth\":10485760,"
				  "\"ops\":200,\"ops_burst\":20}"));
	assert_non_null(strstr(s, "\"bandwidth\":4096,\"bandwidth_burst\":1024}"));
	struct vm_config d;
	assert_int_equal(parse(s, &d), 0);
	assert_memory_equal(&c.dev[0].limit, &d.dev[0].limit, sizeof(c.dev[0].limit));
	assert_memory_equal(&c.dev[1].limit, &d.dev[1].limit, sizeof(c.dev[1].limit));
	free(s);
	vm_config_free(&c);
	vm_config_free(&d);

	vm_config_init(&c);
	assert_int_equal(
		vm_config_add_flag(&c, "disk", "/d,bw=2M,bw_burst=128K,ops=5", err, sizeof(err)),
		0);
	assert_int_equal(c.dev[0].limit.bw, 2 << 20);
	assert_int_equal(c.dev[0].limit.bw_burst, 128 << 10);
	assert_int_equal(c.dev[0].limit.ops, 5);
	assert_int_equal(vm_config_add_flag(&c, "net", "tap=t1,ops=0", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "ops: must be a number of operations from 1"));
	assert_int_equal(vm_config_add_flag(&c, "disk", "/e,bw=1T", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "bw: must be bytes"));
	assert_int_equal(vm_config_add_flag(&c, "disk", "/e,ops_burst=3", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "ops_burst needs ops"));
	assert_int_equal(c.ndev, 1);
	vm_config_free(&c);

	static const struct {
		const char *dev, *want;
	} bad[] = {
		{"\"bandwidth\":0", "devices[0].bandwidth: must be bytes"},
		{"\"bandwidth\":\"fast\"", "devices[0].bandwidth: must be bytes"},
		{"\"bandwidth\":\"-1K\"", "devices[0].bandwidth: must be bytes"},
		{"\"bandwidth\":\"2000000G\"", "devices[0].bandwidth: must be bytes"},
		{"\"bandwidth\":true", "devices[0].bandwidth: must be a number of bytes or a size"},
		{"\"ops\":\"5\"", "devices[0].ops: must be a non-negative integer"},
		{"\"ops\":1000000001", "devices[0].ops: must be a number of operations"},
		{"\"bandwidth_burst\":100", "devices[0].bandwidth_burst: needs bandwidth"},
		{"\"ops_burst\":1", "devices[0].ops_burst: needs ops"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char json[256];
		snprintf(json, sizeof(json),
			 "{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-blk\",\"path\":"
			 "\"/d\",%s}]}",
			 bad[i].dev);
		int r = vm_config_from_json(json, strlen(json), NULL, &c, err, sizeof(err));
		if (r != -EINVAL || !strstr(err, bad[i].want))
			fail_msg("%s: got %d '%s', wanted '%s'", json, r, err, bad[i].want);
	}
	/* Not for other devices. */
	assert_int_equal(parse("{\"image\":\"/u\",\"devices\":[{\"type\":\"virtio-rng\","
			       "\"ops\":5}]}",
			       &c),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),   cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_fields), cmocka_unit_test(test_extra_keys),
		cmocka_unit_test(test_host_sides), cmocka_unit_test(test_mem_check),
		cmocka_unit_test(test_not_utf8),   cmocka_unit_test(test_rate_limits),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
