/* `wisp run [options] IMAGE [-- ARGS...]`: one VM in the foreground, no
 * daemon (like `lkvm run`). The process exit code is the guest's exit status,
 * or one of WISP_EXIT_* when the guest did not get to give one. */
#include <errno.h>
#include <poll.h>
#include <limits.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "arch/x86/x86.h"
#include "cli/cli.h"
#include "image/image.h"
#include "devices/devices.h"
#include "devices/virtio/virtio.h"
#include "security/security.h"
#include "snapshot/snapshot.h"
#include "util/util.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

static const char usage[] =
	"usage: wisp run [--mem SIZE] [--cpus N] [--timeout DURATION] [--stats]\n"
	"                [--rng-device[=SEED]] [--rng] [--disk PATH[,ro][,id=ID][,LIMITS]]\n"
	"                [--net tap=NAME[,mac=MAC][,LIMITS]] [--console virtio[,sock=PATH]]\n"
	"                [--vsock PATH[,cid=N]] IMAGE [-- ARGS...]\n"
	"       wisp run --kernel KERNEL [--initrd FILE] [--cmdline TEXT] [--mem SIZE] [--cpus N]\n"
	"                [--timeout DURATION] [--stats] [device options as above]\n"
	"       wisp run --kernel KERNEL --image IMG [options as above]   (wisp image build)\n"
	"       wisp run --config FILE [--timeout DURATION] [--stats]\n"
	"       wisp run --restore FILE [--verify] [--quiet] [--timeout DURATION] [--stats]\n"
	"                [--disk PATH]... [--net tap=NAME]... [--vsock PATH]\n"
	"                [--console virtio,sock=PATH]   (the host side of each device)\n"
	"       (any of them with --name NAME: `wisp save NAME FILE` can snapshot the VM,\n"
	"        with --log-format json: the VMM's messages as JSON lines,\n"
	"        with --jail: the VMM runs jailed, as root; docs/security.md,\n"
	"        with --ready-fd N --start-fd M: build the VM, say so on fd N,\n"
	"        and start the guest when a byte arrives on fd M,\n"
	"        and with --seccomp off: no system-call filters, for debugging)\n"
	"LIMITS: bw=RATE[,bw_burst=SIZE][,ops=N][,ops_burst=N] (bytes and operations per\n"
	"second; docs/config.md)\n";

#define OPT_NAME    0x101 /* long-only options */
#define OPT_RESTORE 0x102
#define OPT_VERIFY  0x103
#define OPT_CONFIG  0x104
#define OPT_IMAGE   0x105
#define OPT_LOG	    0x106
#define OPT_JAIL    0x107
#define OPT_QUIET   0x108
#define OPT_READY   0x109
#define OPT_START   0x10a
#define OPT_SECCOMP 0x10b
#define OPT_DEVICE  1000 /* --rng-device ... --vsock: 1000 + index in device_flags */
static const char *const device_flags[] = {"rng-device", "rng", "disk", "net", "console", "vsock"};

static struct vm *running_vm; /* for the signal handlers */

static void on_stop_signal(int sig)
{
	struct vm *vm = running_vm;
	if (!vm)
		return;
	if (sig == SIGALRM) {
		vm_request_stop(vm, VM_STOP_TIMEOUT);
	} else {
		if (atomic_load(&vm->stop) == VM_RUNNING)
			vm->stop_signal = sig;
		vm_request_stop(vm, VM_STOP_SIGNAL);
	}
}

/* Options of `wisp run` that describe the VM, not this run. */
static bool describes_vm(int c)
{
	return c == 'm' || c == 'c' || c == 'k' || c == 'i' || c == 'a' || c >= OPT_DEVICE;
}

/* Everything after the options: IMAGE [-- ARGS...] or nothing. */
static int parse_operands(int argc, char **argv, struct run_config *cfg, char *err, size_t errlen)
{
	struct vm_config *vm = &cfg->vm;
	if (cfg->restore || cfg->config_file) {
		const char *what = cfg->restore ? "--restore" : "--config";
		if (optind < argc) {
			snprintf(err, errlen, "run: '%s': %s takes no IMAGE", argv[optind], what);
			return -1;
		}
		return 0;
	}
	if (vm->kernel && optind < argc) {
		snprintf(err, errlen, "run: '%s': give either IMAGE or --kernel, not both",
			 argv[optind]);
		return -1;
	}
	if (!vm->kernel && (vm->initrd || vm->cmdline)) {
		snprintf(err, errlen, "run: %s needs --kernel",
			 vm->initrd ? "--initrd" : "--cmdline");
		return -1;
	}
	if (vm->kernel)
		return 0;
	if (optind >= argc) {
		snprintf(err, errlen, "run: no image given");
		return -1;
	}
	vm->image = strdup(argv[optind++]);
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	vm->args = calloc((size_t)(argc - optind) + 1, sizeof(char *));
	if (!vm->image || !vm->args) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (; optind < argc; optind++)
		if (!(vm->args[vm->nargs++] = strdup(argv[optind]))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	return 0;
}

/* --image IMG (docs/image.md): an initramfs image is the initrd; an ext4
 * image is the first disk, with the kernel told to mount it as root. */
static int apply_image(struct run_config *cfg, char *err, size_t errlen)
{
	struct vm_config *vm = &cfg->vm;
	if (cfg->restore) {
		snprintf(err, errlen, "run: --restore takes the VM from the snapshot, not --image");
		return -1;
	}
	if (!vm->kernel) {
		snprintf(err, errlen, "run: --image needs --kernel (the Wisp guest kernel)");
		return -1;
	}
	struct image_boot boot;
	char why[WISP_ERRLEN];
	if (image_boot_info(cfg->image_file, &boot, why, sizeof(why))) {
		snprintf(err, errlen, "%s", why); /* names the image */
		return -1;
	}
	if (boot.format == IMAGE_INITRAMFS) {
		if (vm->initrd) {
			snprintf(err, errlen, "run: --image '%s' is an initramfs: give no --initrd",
				 cfg->image_file);
			return -1;
		}
		return (vm->initrd = strdup(cfg->image_file)) ? 0 : -1;
	}
	if (vm_config_add_flag(vm, "disk", cfg->image_file, err, errlen))
		return -1;
	char *cmdline;
	if (asprintf(&cmdline, "%s %s", vm->cmdline ? vm->cmdline : LINUX_DEFAULT_CMDLINE,
		     boot.cmdline) < 0)
		return -1;
	free(vm->cmdline);
	vm->cmdline = cmdline;
	return 0;
}

/* One option that describes the VM into cfg->vm. */
static int parse_vm_option(int c, struct run_config *cfg, char *err, size_t errlen)
{
	struct vm_config *vm = &cfg->vm;
	char **dst = NULL;
	uint64_t v;
	cfg->vm_flags = true;
	switch (c) {
	case 'm':
		return vm_config_set_mem(vm, optarg, "--mem", err, errlen) ? -1 : 0;
	case 'c':
		if (opt_parse_uint(optarg, 1, WISP_MAX_VCPUS, &v)) {
			snprintf(err, errlen, "--cpus '%s': must be a number from 1 to %d", optarg,
				 WISP_MAX_VCPUS);
			return -1;
		}
		vm->cpus = (int)v;
		return 0;
	case 'k':
		dst = &vm->kernel;
		break;
	case 'i':
		dst = &vm->initrd;
		break;
	case 'a':
		dst = &vm->cmdline;
		break;
	default: /* a device */
		return vm_config_add_flag(vm, device_flags[c - OPT_DEVICE], optarg, err, errlen)
			       ? -1
			       : 0;
	}
	free(*dst);
	if (!(*dst = strdup(optarg))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* The VM of --config FILE into cfg->vm. */
static int load_config_file(struct run_config *cfg, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t size;
	int r = util_read_file(cfg->config_file, 1 << 20, &buf, &size);
	if (r) {
		snprintf(err, errlen, "--config '%s': %s", cfg->config_file, util_file_error(r));
		return -1;
	}
	char why[WISP_ERRLEN];
	r = vm_config_from_json((const char *)buf, size, NULL, &cfg->vm, why, sizeof(why));
	free(buf);
	if (r) {
		snprintf(err, errlen, "--config '%s': %s", cfg->config_file, why);
		return -1;
	}
	return 0;
}

/* The error message of a getopt failure. */
static void bad_option(int argc, char **argv, char *err, size_t errlen)
{
	(void)argc;
	if (optopt >= OPT_DEVICE)
		snprintf(err, errlen, "run: option '--%s' needs a value",
			 device_flags[optopt - OPT_DEVICE]);
	else if (optopt)
		snprintf(err, errlen, "run: option '-%c' %s", optopt,
			 strchr("mct", optopt) ? "needs a value" : "is not known");
	else
		snprintf(err, errlen, "run: unknown option '%s'", argv[optind - 1]);
}

static const struct option run_opts[] = {
	{"mem", required_argument, NULL, 'm'},
	{"cpus", required_argument, NULL, 'c'},
	{"timeout", required_argument, NULL, 't'},
	{"stats", no_argument, NULL, 's'},
	{"help", no_argument, NULL, 'h'},
	{"kernel", required_argument, NULL, 'k'},
	{"initrd", required_argument, NULL, 'i'},
	{"cmdline", required_argument, NULL, 'a'},
	{"name", required_argument, NULL, OPT_NAME},
	{"restore", required_argument, NULL, OPT_RESTORE},
	{"verify", no_argument, NULL, OPT_VERIFY},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"image", required_argument, NULL, OPT_IMAGE},
	{"log-format", required_argument, NULL, OPT_LOG},
	{"jail", no_argument, NULL, OPT_JAIL},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"ready-fd", required_argument, NULL, OPT_READY},
	{"start-fd", required_argument, NULL, OPT_START},
	{"seccomp", required_argument, NULL, OPT_SECCOMP},
	/* devices: vm_config_add_flag parses their values */
	{"rng-device", optional_argument, NULL, OPT_DEVICE + 0},
	{"rng", no_argument, NULL, OPT_DEVICE + 1},
	{"disk", required_argument, NULL, OPT_DEVICE + 2},
	{"net", required_argument, NULL, OPT_DEVICE + 3},
	{"console", required_argument, NULL, OPT_DEVICE + 4},
	{"vsock", required_argument, NULL, OPT_DEVICE + 5},
	{0},
};

/* --timeout DURATION into cfg->timeout_ms. */
static int set_timeout(const char *arg, struct run_config *cfg, char *err, size_t errlen)
{
	uint64_t v;
	if (opt_parse_duration_ms(arg, &v)) {
		snprintf(err, errlen,
			 "--timeout '%s': not a duration (use e.g. 10, 500ms, 2s "
			 "or 1m)",
			 arg);
		return -1;
	}
	cfg->timeout_ms = v;
	return 0;
}

/* --name NAME, checked, into cfg->name. */
static int set_name(const char *arg, struct run_config *cfg, char *err, size_t errlen)
{
	if (!vm_name_valid(arg) || util_is_vm_id(arg)) {
		snprintf(err, errlen,
			 "--name '%s': use 1 to 63 letters, digits, '_', '.' or "
			 "'-', starting with a letter or digit",
			 arg);
		return -1;
	}
	cfg->name = arg;
	return 0;
}

/* --log-format text|json: set up logging right away. */
static int set_log_format(const char *arg, char *err, size_t errlen)
{
	enum log_format f;
	if (log_parse_format(arg, &f)) {
		snprintf(err, errlen, "--log-format '%s': must be text or json", arg);
		return -1;
	}
	log_setup("wisp", f);
	return 0;
}

/* --ready-fd N or --start-fd M: an open fd above 2, kept from the VM. */
static int set_handshake_fd(int c, const char *arg, struct run_config *cfg, char *err,
			    size_t errlen)
{
	uint64_t v;
	if (opt_parse_uint(arg, 3, INT_MAX, &v) || fcntl((int)v, F_GETFD) < 0) {
		snprintf(err, errlen, "--%s '%s': not an open file descriptor above 2",
			 c == OPT_READY ? "ready-fd" : "start-fd", arg);
		return -1;
	}
	*(c == OPT_READY ? &cfg->ready_fd : &cfg->start_fd) = (int)v;
	fcntl((int)v, F_SETFD, FD_CLOEXEC); /* not the VM's business */
	return 0;
}

/* --seccomp on|off into cfg->seccomp_off. */
static int set_seccomp(const char *arg, struct run_config *cfg, char *err, size_t errlen)
{
	bool on;
	if (sec_seccomp_parse(arg, &on)) {
		snprintf(err, errlen, "--seccomp '%s': use on or off", arg);
		return -1;
	}
	cfg->seccomp_off = !on;
	return 0;
}

/* One option about this run (not the VM); 1 for --help. */
static int parse_run_option(int c, int argc, char **argv, struct run_config *cfg, char *err,
			    size_t errlen)
{
	switch (c) {
	case 't':
		return set_timeout(optarg, cfg, err, errlen);
	case 's':
		cfg->stats = true;
		return 0;
	case OPT_NAME:
		return set_name(optarg, cfg, err, errlen);
	case OPT_RESTORE:
		cfg->restore = optarg;
		return 0;
	case OPT_VERIFY:
		cfg->verify = true;
		return 0;
	case OPT_QUIET:
		cfg->quiet = true;
		return 0;
	case OPT_CONFIG:
		cfg->config_file = optarg;
		return 0;
	case OPT_IMAGE:
		cfg->image_file = optarg;
		cfg->vm_flags = true;
		return 0;
	case OPT_LOG:
		return set_log_format(optarg, err, errlen);
	case OPT_JAIL:
		cfg->jail = true;
		return 0;
	case OPT_READY:
	case OPT_START:
		return set_handshake_fd(c, optarg, cfg, err, errlen);
	case OPT_SECCOMP:
		return set_seccomp(optarg, cfg, err, errlen);
	case 'h':
		snprintf(err, errlen, "%s", "");
		return 1;
	default:
		bad_option(argc, argv, err, errlen);
		return -1;
	}
}

/* Every option, in order, into cfg; stops at the first operand. */
static int parse_options(int argc, char **argv, struct run_config *cfg, char *err, size_t errlen)
{
	optind = 0; /* full reset: this may be called more than once */
	opterr = 0;
	int c, r;
	while ((c = getopt_long(argc, argv, "+m:c:t:sh", run_opts, NULL)) != -1) {
		if (c != '?' && c != 'h' && describes_vm(c))
			r = parse_vm_option(c, cfg, err, errlen);
		else
			r = parse_run_option(c, argc, argv, cfg, err, errlen);
		if (r)
			return r;
	}
	return 0;
}

/* Refuse options that do not go together. */
static int check_option_mix(const struct run_config *cfg, char *err, size_t errlen)
{
	if (cfg->ready_fd >= 0 && cfg->ready_fd == cfg->start_fd) {
		snprintf(err, errlen, "run: --ready-fd and --start-fd must differ");
		return -1;
	}
	if (cfg->jail && (cfg->ready_fd >= 0 || cfg->start_fd >= 0)) {
		snprintf(err, errlen, "run: --ready-fd and --start-fd do not go with --jail yet");
		return -1;
	}
	if (cfg->verify && !cfg->restore) {
		snprintf(err, errlen, "run: --verify needs --restore");
		return -1;
	}
	if (cfg->restore && cfg->config_file) {
		snprintf(err, errlen, "run: give --restore or --config, not both");
		return -1;
	}
	/* A snapshot or a file says what the VM is; only how to run it here
	 * may be given with them (and a restore's device host sides). */
	if (cfg->config_file && cfg->vm_flags) {
		snprintf(err, errlen,
			 "run: --config describes the whole VM; only --name, --timeout and "
			 "--stats go with it");
		return -1;
	}
	const struct vm_config *vm = &cfg->vm;
	if (cfg->restore && (vm->kernel || vm->initrd || vm->cmdline || vm->mem || vm->cpus != 1)) {
		snprintf(err, errlen,
			 "run: --restore takes the VM (image, memory, vCPUs) from the "
			 "snapshot; only --name, --timeout, --stats, --verify and the "
			 "host side of its devices go with it");
		return -1;
	}
	return 0;
}

/* --config FILE: the VM from the file, named by --name if given. */
static int finish_from_config_file(struct run_config *cfg, char *err, size_t errlen)
{
	if (load_config_file(cfg, err, errlen))
		return -1;
	/* --name wins over the file's "name" (`wisp create --name N --config F`). */
	free(cfg->name ? cfg->vm.name : NULL);
	if (cfg->name && !(cfg->vm.name = strdup(cfg->name))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* A VM from flags and IMAGE: named, then checked as a whole. */
static int finish_from_flags(struct run_config *cfg, char *err, size_t errlen)
{
	if (cfg->name && !(cfg->vm.name = strdup(cfg->name))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	char why[WISP_ERRLEN];
	if (vm_config_finish(&cfg->vm, why, sizeof(why))) {
		/* Flags name the option, not the JSON field. */
		if (!strncmp(why, "cpus: unikernels", 16))
			snprintf(err, errlen, "image '%s': %s", cfg->vm.image, why + 6);
		else
			snprintf(err, errlen, "run: %s", why);
		return -1;
	}
	return 0;
}

int run_parse_args(int argc, char **argv, struct run_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ready_fd = cfg->start_fd = -1;
	vm_config_init(&cfg->vm);
	int r = parse_options(argc, argv, cfg, err, errlen);
	if (r)
		return r; /* -1, or 1 for --help */
	if (check_option_mix(cfg, err, errlen))
		return -1;
	if (cfg->image_file && apply_image(cfg, err, errlen))
		return -1;
	if (parse_operands(argc, argv, cfg, err, errlen))
		return -1;
	if (cfg->restore)
		return 0; /* its devices are checked against the snapshot's */
	if (cfg->config_file)
		return finish_from_config_file(cfg, err, errlen);
	return finish_from_flags(cfg, err, errlen);
}

/* Map how the VM stopped to the process exit code, telling the user why. */
int run_outcome(struct vm *vm, const struct run_config *cfg)
{
	switch (atomic_load(&vm->stop)) {
	case VM_STOP_EXIT:
		return vm->exit_status;
	case VM_STOP_TIMEOUT:
		log_info(NULL, "guest stopped: --timeout of %llu ms elapsed",
			 (unsigned long long)cfg->timeout_ms);
		return WISP_EXIT_TIMEOUT;
	case VM_STOP_SIGNAL:
		log_info(NULL, "guest stopped by signal %s", sigabbrev_np(vm->stop_signal));
		return WISP_EXIT_SIGNAL + vm->stop_signal;
	case VM_STOP_CRASH:
		vm_log_crash(vm);
		return WISP_EXIT_CRASH;
	case VM_STOP_RESET:
		return 0; /* the guest rebooted: that is how a Linux guest powers off */
	default:
		log_error(NULL, "%s", vm->crash);
		return WISP_EXIT_ERROR;
	}
}

void run_print_stats(struct vm *vm)
{
	struct exit_stats s;
	vm_stats(vm, &s);
	fprintf(stderr,
		"wisp: exits: io %llu mmio %llu hypercall %llu hlt %llu intr %llu unhandled %llu "
		"shutdown %llu other %llu\n",
		(unsigned long long)s.io, (unsigned long long)s.mmio,
		(unsigned long long)s.hypercall, (unsigned long long)s.hlt,
		(unsigned long long)s.intr, (unsigned long long)s.unhandled,
		(unsigned long long)s.shutdown, (unsigned long long)s.other);
	vm_print_device_stats(vm, 2);
}

int run_vm_foreground(struct vm *vm, const struct run_config *cfg)
{
	if (cfg->name) {
		char err[WISP_ERRLEN];
		if (run_control_start(vm, cfg, err, sizeof(err))) {
			log_error(NULL, "--name '%s': %s", cfg->name, err);
			return -1;
		}
	}
	char jerr[WISP_ERRLEN];
	if (run_jail_enter(vm, cfg, jerr, sizeof(jerr))) {
		fprintf(stderr, "wisp: %s\n", jerr);
		if (cfg->name)
			run_control_stop();
		return -1;
	}
	running_vm = vm;
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (cfg->timeout_ms) {
		struct itimerval it = {.it_value = {(time_t)(cfg->timeout_ms / 1000),
						    (suseconds_t)(cfg->timeout_ms % 1000) * 1000}};
		setitimer(ITIMER_REAL, &it, NULL);
	}
	util_trace("image loaded, vCPU ready");
	/* Everything is set up: from here each thread keeps to its list. */
	char err[WISP_ERRLEN];
	if (sec_seccomp_start(!cfg->seccomp_off, cfg->name, err, sizeof(err))) {
		log_error(NULL, "seccomp: %s", err);
		running_vm = NULL;
		if (cfg->name)
			run_control_stop();
		return -1;
	}
	vm_run(vm);
	util_trace("guest stopped");
	struct itimerval off = {0};
	setitimer(ITIMER_REAL, &off, NULL);
	running_vm = NULL;
	if (cfg->name)
		run_control_stop();
	return 0;
}

/* The CONFIG record of this VM's snapshots: "wisp-config", then its
 * configuration as JSON with absolute host paths (docs/snapshot.md). */
int run_config_record(struct run_config *cfg)
{
	struct vm_config c;
	if (vm_config_copy(&c, &cfg->vm))
		return -1;
	free(c.name); /* a restored VM gets the name its restore gives it */
	c.name = NULL;
	vm_config_record_sizes(&c); /* a missing disk is reported when it is opened */
	char *json = vm_config_abs_paths(&c) ? NULL : vm_config_to_json(&c);
	vm_config_free(&c);
	if (!json)
		return -1;
	size_t n = strlen(json) + 1;
	cfg->config = malloc(sizeof(SNAP_CONFIG_TAG) + n);
	if (cfg->config) {
		memcpy(cfg->config, SNAP_CONFIG_TAG, sizeof(SNAP_CONFIG_TAG));
		memcpy(cfg->config + sizeof(SNAP_CONFIG_TAG), json, n);
		cfg->config_len = sizeof(SNAP_CONFIG_TAG) + n;
	}
	free(json);
	return cfg->config ? 0 : -1;
}

int cmd_run(int argc, char **argv)
{
	struct run_config cfg;
	char err[WISP_ERRLEN];
	util_trace("main");
	int r = run_parse_args(argc, argv, &cfg, err, sizeof(err));
	if (r) {
		vm_config_free(&cfg.vm);
		if (r > 0) {
			fputs(usage, stdout);
			return 0;
		}
		fprintf(stderr, "wisp: %s\n%s", err, usage);
		return WISP_EXIT_ERROR;
	}
	struct jail_limits lim;
	if (!cfg.jail && !cfg.restore && vm_config_limits(&cfg.vm, &lim)) {
		fprintf(stderr, "wisp: limits: the VM's cgroup limits need --jail (as root)\n");
		vm_config_free(&cfg.vm);
		return WISP_EXIT_ERROR;
	}
	int code;
	if (cfg.jail && run_jail_start(&cfg, &code)) {
		/* the supervisor: the jailed child ran the VM */
	} else if (cfg.restore)
		code = run_restore(&cfg);
	else if (run_config_record(&cfg))
		code = WISP_EXIT_ERROR;
	else
		code = run_built(&cfg);
	free(cfg.config);
	vm_config_free(&cfg.vm);
	return code;
}

/* A pre-created VM could not be built: err goes to --ready-fd too. */
static void ready_failed(struct run_config *cfg, const char *err)
{
	if (cfg->ready_fd < 0)
		return;
	if (write(cfg->ready_fd, err, strlen(err)) < 0)
		(void)0; /* the waiter is gone: nothing to tell */
	close(cfg->ready_fd);
	cfg->ready_fd = -1;
}

/* The VM is built: say so on --ready-fd, then wait for the byte on
 * --start-fd. -1 if the start never comes (the waiter went away). */
static int ready_then_wait(struct run_config *cfg)
{
	if (cfg->ready_fd >= 0) {
		if (write(cfg->ready_fd, "", 1) < 0)
			(void)0; /* nobody waits for it: starting is still up to start_fd */
		close(cfg->ready_fd);
		cfg->ready_fd = -1;
	}
	if (cfg->start_fd < 0)
		return 0;
	util_trace("VM built, waiting for the start byte");
	struct pollfd p = {.fd = cfg->start_fd, .events = POLLIN};
	char c;
	ssize_t n;
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	do
		n = read(cfg->start_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	close(cfg->start_fd);
	cfg->start_fd = -1;
	util_trace("start byte read");
	return n == 1 ? 0 : -1;
}

int run_built(struct run_config *cfg)
{
	char err[WISP_ERRLEN];
	int code = WISP_EXIT_ERROR;
	struct kvm kvm = {.fd = -1};
	struct vm *vm = NULL;
	struct linux_watch *watch = NULL;
	bool lx = cfg->vm.kind == VM_KIND_LINUX;
	struct vm_build b = {.cfg = &cfg->vm,
			     .restore = cfg->snap != NULL,
			     .restore_cpl0 = cfg->snap &&
					     !(cfg->snap->img.vm.flags & SNAP_VM_SPLIT_IRQCHIP),
			     .console_in = 0,
			     .console_escape = isatty(0)};
	/* Everything about the guest's files and the device backends is
	 * checked before KVM is touched, so bad input fails fast. */
	if (vm_build_check(&b, err, sizeof(err)))
		goto fail;
	util_trace("image read");
	if (kvm_open(&kvm, err, sizeof(err)))
		goto fail;
	util_trace("kvm opened, CPUID queried");
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (vm_build_create(&b, &kvm, vm, err, sizeof(err)))
		goto fail;
	if (cfg->snap) {
		/* The memory is mapped, not read, unless --verify reads it all. */
		struct progress pg;
		char what[160];
		snprintf(what, sizeof(what), "wisp: restore '%.120s'", cfg->restore);
		progress_start(&pg, what, cfg->snap->hdr.mem_size, cfg->quiet);
		cfg->snap->progress = &pg;
		int rr = snap_restore_file(vm, cfg->snap, cfg->verify, NULL, err, sizeof(err));
		cfg->snap->progress = NULL;
		progress_end(&pg, rr == 0);
		if (rr) {
			char msg[WISP_ERRLEN + PATH_MAX + 16];
			snprintf(msg, sizeof(msg), "snapshot '%s': %s", cfg->restore, err);
			log_error(NULL, "%s", msg);
			ready_failed(cfg, msg);
			goto out;
		}
	} else if (vm_build_boot(&b, vm, err, sizeof(err)))
		goto fail;
	vm_build_free(&b);
	if (lx && !(watch = run_linux_watch(vm, b.serial))) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (ready_then_wait(cfg)) {
		code = 0; /* deleted before it started: nothing ran */
		goto out;
	}
	int fg = run_vm_foreground(vm, cfg);
	if (!fg)
		code = run_outcome(vm, cfg);
	if (watch)
		code = run_linux_outcome(watch, code);
	watch = NULL;
	if (!fg && cfg->stats)
		run_print_stats(vm);
	goto out;
fail:
	log_error(NULL, "%s", err);
	ready_failed(cfg, err);
out:
	ready_failed(cfg, "wisp run ended before the VM was ready");
	if (watch)
		run_linux_outcome(watch, code);
	serial_destroy(b.serial);
	vm_build_free(&b);
	if (vm)
		vm_destroy(vm);
	free(vm);
	if (kvm.fd >= 0)
		kvm_close(&kvm);
	util_trace("VM destroyed");
	return code;
}
