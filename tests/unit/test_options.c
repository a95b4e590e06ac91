/* Option parsing of `wisp run`: good values parse, bad ones give an error
 * that names the option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static void test_sizes(void **state)
{
	uint64_t v;
	assert_int_equal(opt_parse_size("64", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(opt_parse_size("512K", &v), 0);
	assert_int_equal(v, 512ull << 10);
	assert_int_equal(opt_parse_size("2g", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(opt_parse_size("16MiB", &v), 0);
	assert_int_equal(v, 16ull << 20);
	const char *bad[] = {"",
			     "M",
			     "-1",
			     "12X",
			     "1.5G",
			     "64 M",
			     "1GG",
			     "99999999999999999999",
			     "17179869184G"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (opt_parse_size(bad[i], &v) == 0)
			fail_msg("'%s' parsed as a size", bad[i]);
	(void)state;
}

static void test_durations(void **state)
{
	uint64_t v;
	assert_int_equal(opt_parse_duration_ms("3", &v), 0);
	assert_int_equal(v, 3000);
	assert_int_equal(opt_parse_duration_ms("250ms", &v), 0);
	assert_int_equal(v, 250);
	assert_int_equal(opt_parse_duration_ms("2m", &v), 0);
	assert_int_equal(v, 120000);
	const char *bad[] = {"", "0", "ms", "5h", "-3", "1.5", "3 s"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (opt_parse_duration_ms(bad[i], &v) == 0)
			fail_msg("'%s' parsed as a duration", bad[i]);
	assert_int_not_equal(opt_parse_uint("0", 1, 8, &v), 0);
	assert_int_not_equal(opt_parse_uint("9", 1, 8, &v), 0);
	assert_int_not_equal(opt_parse_uint("2x", 1, 8, &v), 0);
	assert_int_equal(opt_parse_uint("8", 1, 8, &v), 0);
	(void)state;
}

/* Parse a command line given as one string (words split on spaces). */
static int parse(const char *line, struct run_config *cfg, char *err)
{
	static char copy[512];
	char *argv[32];
	int argc = 0;
	strcpy(copy, line);
	for (char *t = strtok(copy, " "); t; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	return run_parse_args(argc, argv, cfg, err, 256);
}

static void test_run_args(void **state)
{
	struct run_config cfg;
	char err[256];
	assert_int_equal(parse("run --mem 64M --timeout 2s img.elf -- a b", &cfg, err), 0);
	assert_int_equal(cfg.vm.mem, 64ull << 20);
	assert_int_equal(cfg.timeout_ms, 2000);
	assert_string_equal(cfg.vm.image, "img.elf");
	assert_int_equal(cfg.vm.nargs, 2);
	assert_string_equal(cfg.vm.args[1], "b");
	vm_config_free(&cfg.vm);
	assert_int_equal(parse("run img.elf x", &cfg, err), 0);
	assert_int_equal(cfg.vm.mem, WISP_DEFAULT_MEM);
	assert_string_equal(cfg.vm.args[0], "x");
	vm_config_free(&cfg.vm);
	assert_int_equal(parse("run img.elf", &cfg, err), 0);
	assert_int_equal(cfg.vm.nargs, 0);
	vm_config_free(&cfg.vm);
	/* Linux: its own default memory, several vCPUs, devices in order */
	assert_int_equal(
		parse("run --kernel bz --cpus 4 --disk d.img --rng-device=7 --rng", &cfg, err), 0);
	assert_int_equal(cfg.vm.kind, VM_KIND_LINUX);
	assert_int_equal(cfg.vm.mem, LINUX_DEFAULT_MEM);
	assert_int_equal(cfg.vm.cpus, 4);
	assert_int_equal(cfg.vm.ndev, 3);
	assert_int_equal(cfg.vm.dev[0].kind, VM_DEV_BLK);
	assert_int_equal(cfg.vm.dev[1].kind, VM_DEV_RNG_DEVICE);
	assert_int_equal(cfg.vm.dev[1].seed, 7);
	vm_config_free(&cfg.vm);
	/* a restore takes device host sides, nothing about the VM's size */
	assert_int_equal(parse("run --restore s.snap --disk d.img --net tap=t0", &cfg, err), 0);
	assert_int_equal(cfg.vm.ndev, 2);
	vm_config_free(&cfg.vm);

	struct {
		const char *line, *want;
	} bad[] = {
		{"run", "no image"},
		{"run --mem lots img", "--mem 'lots'"},
		{"run --mem 1M img", "between"},
		{"run --mem 100000G img", "between"},
		{"run --mem 3001K img", "multiple of 4 KiB"},
		{"run --cpus 0 img", "--cpus '0'"},
		{"run --cpus 99 img", "--cpus '99'"},
		{"run --timeout soon img", "--timeout 'soon'"},
		{"run --bogus img", "unknown option '--bogus'"},
		{"run --mem", "needs a value"},
		{"run --cpus 2 img", "exactly 1 vCPU"},
		{"run --initrd i img", "--initrd needs --kernel"},
		{"run --kernel k img", "not both"},
		{"run --restore s --mem 64M", "--restore takes"},
		{"run --config c.json --mem 64M", "--config describes"},
		{"run --config c.json img", "takes no IMAGE"},
		{"run --restore s --config c", "not both"},
		{"run --name 0123456789ab img", "--name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (parse(bad[i].line, &cfg, err) >= 0)
			fail_msg("'%s' was accepted", bad[i].line);
		if (!strstr(err, bad[i].want))
			fail_msg("'%s': error '%s' lacks '%s'", bad[i].line, err, bad[i].want);
		vm_config_free(&cfg.vm);
	}
	(void)state;
}

static void test_join(void **state)
{
	char *argv[] = {"a", "b c", "", NULL};
	char *s = opt_join_args(3, argv);
	assert_string_equal(s, "a \"b c\" \"\"");
	free(s);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_run_args),
		cmocka_unit_test(test_join),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
