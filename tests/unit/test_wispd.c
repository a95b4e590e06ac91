/* The control plane without KVM: wispd's options and pool specs, VM names
 * and ids, and the VMM protocol's messages and descriptor passing. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/wispd.h"

static int parse(struct wispd_config *cfg, char *err, const char *a1, const char *a2,
		 const char *a3)
{
	char *argv[] = {"wispd", (char *)a1, (char *)a2, (char *)a3, NULL};
	int argc = 1 + (a1 != NULL) + (a2 != NULL) + (a3 != NULL);
	return wispd_parse_args(argc, argv, cfg, err, 256);
}

static void test_defaults(void **state)
{
	struct wispd_config cfg;
	char err[256];
	setenv("WISP_RUNTIME_DIR", "/tmp/wisp-test-run", 1);
	assert_int_equal(parse(&cfg, err, NULL, NULL, NULL), 0);
	assert_string_equal(cfg.runtime_dir, "/tmp/wisp-test-run");
	assert_string_equal(cfg.socket_path, "/tmp/wisp-test-run/wispd.sock");
	assert_int_equal(cfg.nr_classes, 1); /* WISPD_DEFAULT_POOL */
	assert_int_equal(cfg.classes[0].mem, 32u << 20);
	assert_int_equal(cfg.classes[0].target, 4);
	assert_int_equal(cfg.ring_size, CTL_RING_DEFAULT);
	assert_false(cfg.foreground);
	assert_non_null(strstr(cfg.vmm_path, "wisp-vmm"));
	unsetenv("WISP_RUNTIME_DIR");
	(void)state;
}

static void test_options(void **state)
{
	struct wispd_config cfg;
	char err[256];
	assert_int_equal(parse(&cfg, err, "--pool", "64M=2", "--foreground"), 0);
	assert_int_equal(cfg.nr_classes, 1);
	assert_int_equal(cfg.classes[0].mem, 64u << 20);
	assert_int_equal(cfg.classes[0].target, 2);
	assert_int_equal(cfg.classes[0].cpus, 1);
	assert_false(cfg.classes[0].linux_guest);
	assert_true(cfg.foreground);
	/* Linux classes: memory and vCPUs; beside a unikernel class of that size. */
	char *lx[] = {"wispd",	"--pool", "linux:256M:2=3", "--pool",
		      "256M=1", "--pool", "linux:256M=1",   NULL};
	assert_int_equal(wispd_parse_args(7, lx, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.nr_classes, 3);
	assert_true(cfg.classes[0].linux_guest);
	assert_int_equal(cfg.classes[0].mem, 256u << 20);
	assert_int_equal(cfg.classes[0].cpus, 2);
	assert_int_equal(cfg.classes[0].target, 3);
	assert_false(cfg.classes[1].linux_guest);
	assert_true(cfg.classes[2].linux_guest);
	assert_int_equal(cfg.classes[2].cpus, 1);
	assert_int_equal(parse(&cfg, err, "--pool", "none", NULL), 0);
	assert_int_equal(cfg.nr_classes, 0);
	assert_int_equal(parse(&cfg, err, "--socket", "/tmp/x.sock", NULL), 0);
	assert_string_equal(cfg.socket_path, "/tmp/x.sock");
	assert_int_equal(parse(&cfg, err, "--console-size", "1M", NULL), 0);
	assert_int_equal(cfg.ring_size, 1u << 20);
	assert_int_equal(parse(&cfg, err, "--help", NULL, NULL), 1);
	(void)state;
}

static void test_bad_options(void **state)
{
	struct wispd_config cfg;
	char err[256];
	assert_int_equal(parse(&cfg, err, "--pool", "32M", NULL), -1);
	assert_non_null(strstr(err, "use SIZE=COUNT"));
	assert_int_equal(parse(&cfg, err, "--pool", "1M=2", NULL), -1); /* below the minimum */
	assert_non_null(strstr(err, "not a memory size"));
	assert_int_equal(parse(&cfg, err, "--pool", "32M=x", NULL), -1);
	assert_non_null(strstr(err, "count 'x'"));
	assert_int_equal(parse(&cfg, err, "--pool", "32M=99999", NULL), -1);
	assert_int_equal(parse(&cfg, err, "--pool", "32M:2=1", NULL), -1); /* unikernel: 1 vCPU */
	assert_non_null(strstr(err, "unikernel shells have 1 vCPU"));
	assert_int_equal(parse(&cfg, err, "--pool", "linux:64M:0=1", NULL), -1);
	assert_non_null(strstr(err, "vCPUs '0'"));
	assert_int_equal(parse(&cfg, err, "--pool", "linux:64M:x=1", NULL), -1);
	assert_int_equal(parse(&cfg, err, "--pool", "linux:=1", NULL), -1);
	assert_non_null(strstr(err, "not a memory size"));
	assert_int_equal(parse(&cfg, err, "--pool", "linux:64M:2", NULL), -1);
	assert_non_null(strstr(err, "linux:SIZE:CPUS=COUNT"));
	assert_int_equal(parse(&cfg, err, "--console-size", "1", NULL), 0); /* 1 MiB */
	assert_int_equal(parse(&cfg, err, "--console-size", "1K", NULL), -1);
	assert_int_equal(parse(&cfg, err, "--frobnicate", NULL, NULL), -1);
	assert_non_null(strstr(err, "unknown option '--frobnicate'"));
	assert_int_equal(parse(&cfg, err, "stray", NULL, NULL), -1);
	assert_non_null(strstr(err, "unexpected argument 'stray'"));
	char longpath[200];
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(parse(&cfg, err, "--socket", longpath, NULL), -1);
	assert_non_null(strstr(err, "longer than"));
	char *argv[] = {"wispd", "--pool", "32M=1", "--pool", "32M=2", NULL};
	assert_int_equal(wispd_parse_args(5, argv, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "given twice"));
	char *twice[] = {"wispd", "--pool", "linux:64M:2=1", "--pool", "linux:64M:2=2", NULL};
	assert_int_equal(wispd_parse_args(5, twice, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "class linux:64M:2=2 given twice"));
	(void)state;
}

static void test_names(void **state)
{
	assert_true(ctl_valid_name("web-1"));
	assert_true(ctl_valid_name("a"));
	assert_true(ctl_valid_name("A_b.c-9"));
	assert_false(ctl_valid_name(""));
	assert_false(ctl_valid_name("-x"));
	assert_false(ctl_valid_name("a b"));
	assert_false(ctl_valid_name("a/b"));
	assert_false(ctl_valid_name("../x"));
	char big[80];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_false(ctl_valid_name(big));
	big[CTL_NAME_MAX] = 0;
	assert_true(ctl_valid_name(big));
	char id[CTL_ID_LEN + 1], id2[CTL_ID_LEN + 1];
	ctl_new_id(id);
	ctl_new_id(id2);
	assert_true(ctl_valid_id(id));
	assert_string_not_equal(id, id2);
	assert_false(ctl_valid_id("0123456789a"));   /* 11 digits */
	assert_false(ctl_valid_id("0123456789abc")); /* 13 */
	assert_false(ctl_valid_id("0123456789aG"));
	assert_string_equal(ctl_state_name(CTL_STATE_CRASHED), "crashed");
	(void)state;
}

static void test_messages(void **state)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	/* A message with a descriptor: both arrive, the fd is usable. */
	struct ctl_config c = {.type = CTL_CONFIG};
	snprintf(c.name, sizeof(c.name), "vm1");
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(ctl_send(sv[0], &c, sizeof(c), devnull), 0);
	struct ctl_config got;
	int fd = -2;
	assert_int_equal(ctl_recv(sv[1], &got, sizeof(got), &fd), (ssize_t)sizeof(got));
	assert_string_equal(got.name, "vm1");
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	/* A receiver that wants no fd gets none (and leaks none). */
	assert_int_equal(ctl_send(sv[0], &c, sizeof(c), devnull), 0);
	assert_int_equal(ctl_recv(sv[1], &got, sizeof(got), NULL), (ssize_t)sizeof(got));
	/* A message larger than the buffer is an error, never a partial read. */
	assert_int_equal(ctl_send(sv[0], &c, sizeof(c), devnull), 0);
	fd = -2;
	assert_int_equal(ctl_recv(sv[1], &got, 16, &fd), -EMSGSIZE);
	assert_int_equal(fd, -1);
	/* End of stream. */
	close(sv[0]);
	assert_int_equal(ctl_recv(sv[1], &got, sizeof(got), &fd), 0);
	close(sv[1]);
	close(devnull);
	(void)state;
}

/* What a VMM says is checked before wispd uses it (docs/security.md). */
static void test_check_info(void **state)
{
	(void)state;
	char why[128];
	struct ctl_info ok = {
		.type = CTL_INFO, .state = CTL_STATE_RUNNING, .pid = 42, .mem = 32u << 20};
	snprintf(ok.id, sizeof(ok.id), "0123456789ab");
	snprintf(ok.name, sizeof(ok.name), "web1");
	assert_int_equal(ctl_check_info(&ok, sizeof(ok), why, sizeof(why)), 0);
	assert_int_equal(ctl_check_info(&ok, sizeof(ok) - 1, why, sizeof(why)), -EPROTO);
	struct ctl_info in;
#define BAD(stmt, want)                                                                            \
	do {                                                                                       \
		in = ok;                                                                           \
		stmt;                                                                              \
		why[0] = 0;                                                                        \
		assert_int_equal(ctl_check_info(&in, sizeof(in), why, sizeof(why)), -EPROTO);      \
		assert_non_null(strstr(why, want));                                                \
	} while (0)
	BAD(in.type = 99, "unknown message type 99");
	BAD(in.state = 7, "state 7 out of range");
	BAD((in.type = CTL_EXIT, in.state = CTL_STATE_RUNNING), "exit report with the live state");
	BAD(in.flags = 8, "unknown flags");
	BAD(in.pid = -1, "pid -1");
	BAD(in.error = 5, "not an errno");
	BAD(memset(in.id, 'a', sizeof(in.id)), "malformed id");
	BAD(snprintf(in.id, sizeof(in.id), "xyz"), "malformed id");
	BAD(snprintf(in.name, sizeof(in.name), "-bad"), "malformed name");
	BAD(memset(in.reason, 'x', sizeof(in.reason)), "reason not terminated");
	BAD(in.mem = 1, "memory size");
	BAD(in.mig_state = 9, "migration state 9 out of range");
#undef BAD
	in = ok;
	in.type = CTL_EXIT;
	in.state = CTL_STATE_CRASHED;
	assert_int_equal(ctl_check_info(&in, sizeof(in), why, sizeof(why)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),    cmocka_unit_test(test_options),
		cmocka_unit_test(test_bad_options), cmocka_unit_test(test_names),
		cmocka_unit_test(test_messages),    cmocka_unit_test(test_check_info),
	};
	return cmocka_run_group_tests_name("wispd", tests, NULL, NULL);
}
