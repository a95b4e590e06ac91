/* `wisp run [options] IMAGE [-- ARGS...]`: one VM in the foreground, no
 * daemon (like `lkvm run`). The process exit code is the guest's exit status,
 * or one of WISP_EXIT_* when the guest did not get to give one. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "arch/x86/x86.h"
#include "cli/cli.h"
#include "control/control.h"
#include "snapshot/snapshot.h"
#include "util/util.h"
#include "vmm/vmm.h"

static const char usage[] =
	"usage: wisp run [--mem SIZE] [--cpus N] [--timeout DURATION] [--stats]\n"
	"                [--rng-device[=SEED]] [--rng] [--disk PATH[,ro][,id=ID]]\n"
	"                [--net tap=NAME[,mac=MAC]] [--console virtio[,sock=PATH]]\n"
	"                [--vsock PATH[,cid=N]] IMAGE [-- ARGS...]\n"
	"       wisp run --kernel KERNEL [--initrd FILE] [--cmdline TEXT] [--mem SIZE] [--cpus N]\n"
	"                [--timeout DURATION] [--stats] [device options as above]\n"
	"       wisp run --restore FILE [--verify] [--timeout DURATION] [--stats]\n"
	"       (any of them with --name NAME: `wisp save NAME FILE` can snapshot the VM)\n";

#define OPT_RNG_DEVICE 0x100 /* long-only options */
#define OPT_NAME       0x101
#define OPT_RESTORE    0x102
#define OPT_VERIFY     0x103
#define OPT_VIRTIO     1000 /* --rng ... --vsock: 1000 + index in virtio_flags */
static const char *const virtio_flags[] = {"rng", "disk", "net", "console", "vsock"};

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

int run_parse_args(int argc, char **argv, struct run_config *cfg, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{"mem", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 't'},
		{"stats", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},
		{"cmdline", required_argument, NULL, 'a'},
		{"rng-device", optional_argument, NULL, OPT_RNG_DEVICE},
		{"name", required_argument, NULL, OPT_NAME},
		{"restore", required_argument, NULL, OPT_RESTORE},
		{"verify", no_argument, NULL, OPT_VERIFY},
		/* virtio devices, parsed by virtio_args.c */
		{"rng", no_argument, NULL, OPT_VIRTIO + 0},
		{"disk", required_argument, NULL, OPT_VIRTIO + 1},
		{"net", required_argument, NULL, OPT_VIRTIO + 2},
		{"console", required_argument, NULL, OPT_VIRTIO + 3},
		{"vsock", required_argument, NULL, OPT_VIRTIO + 4},
		{0},
	};
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem = WISP_DEFAULT_MEM;
	cfg->cpus = 1;
	optind = 0; /* full reset: this may be called more than once */
	opterr = 0;
	int c;
	uint64_t v;
	while ((c = getopt_long(argc, argv, "+m:c:t:sh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (opt_parse_size(optarg, &v)) {
				snprintf(err, errlen, "--mem '%s': not a size (use e.g. 64M or 1G)",
					 optarg);
				return -1;
			}
			if (v < WISP_MIN_MEM || v > WISP_MAX_MEM) {
				snprintf(err, errlen,
					 "--mem '%s': must be between %llu MiB and %llu GiB",
					 optarg, WISP_MIN_MEM >> 20, WISP_MAX_MEM >> 30);
				return -1;
			}
			if (v % 4096) {
				snprintf(err, errlen, "--mem '%s': must be a multiple of 4 KiB",
					 optarg);
				return -1;
			}
			cfg->mem = v;
			cfg->mem_given = true;
			break;
		case 'c':
			if (opt_parse_uint(optarg, 1, WISP_MAX_VCPUS, &v)) {
				snprintf(err, errlen, "--cpus '%s': must be a number from 1 to %d",
					 optarg, WISP_MAX_VCPUS);
				return -1;
			}
			cfg->cpus = (int)v;
			break;
		case 't':
			if (opt_parse_duration_ms(optarg, &v)) {
				snprintf(err, errlen,
					 "--timeout '%s': not a duration (use e.g. 10, 500ms, 2s "
					 "or 1m)",
					 optarg);
				return -1;
			}
			cfg->timeout_ms = v;
			break;
		case 's':
			cfg->stats = true;
			break;
		case 'k':
			cfg->kernel = optarg;
			break;
		case 'i':
			cfg->initrd = optarg;
			break;
		case 'a':
			cfg->kernel_cmdline = optarg;
			break;
		case OPT_RNG_DEVICE:
			cfg->rng_device = true;
			if (optarg) {
				if (opt_parse_uint(optarg, 0, UINT32_MAX, &v)) {
					snprintf(err, errlen,
						 "--rng-device='%s': the seed must be a number "
						 "from 0 to 4294967295",
						 optarg);
					return -1;
				}
				cfg->rng_seeded = true;
				cfg->rng_seed = (uint32_t)v;
			}
			break;
		case OPT_NAME:
			if (!ctl_valid_name(optarg) || ctl_valid_id(optarg)) {
				snprintf(err, errlen,
					 "--name '%s': use 1 to 63 letters, digits, '_', '.' or "
					 "'-', "
					 "starting with a letter or digit",
					 optarg);
				return -1;
			}
			cfg->name = optarg;
			break;
		case OPT_RESTORE:
			cfg->restore = optarg;
			break;
		case OPT_VERIFY:
			cfg->verify = true;
			break;
		case 'h':
			snprintf(err, errlen, "%s", "");
			return 1;
		case OPT_VIRTIO + 0:
		case OPT_VIRTIO + 1:
		case OPT_VIRTIO + 2:
		case OPT_VIRTIO + 3:
		case OPT_VIRTIO + 4:
			if (virtio_args_parse(&cfg->virtio, virtio_flags[c - OPT_VIRTIO], optarg,
					      err, errlen))
				return -1;
			break;
		default:
			if (optopt >= OPT_VIRTIO)
				snprintf(err, errlen, "run: option '--%s' needs a value",
					 virtio_flags[optopt - OPT_VIRTIO]);
			else if (optopt)
				snprintf(err, errlen, "run: option '-%c' %s", optopt,
					 strchr("mct", optopt) ? "needs a value" : "is not known");
			else
				snprintf(err, errlen, "run: unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	if (cfg->verify && !cfg->restore) {
		snprintf(err, errlen, "run: --verify needs --restore");
		return -1;
	}
	if (cfg->restore) {
		/* The snapshot says what the VM is; only how to run it here may
		 * be given. */
		if (cfg->kernel || cfg->initrd || cfg->kernel_cmdline || cfg->mem_given ||
		    cfg->cpus != 1 || cfg->rng_device || cfg->virtio.n || optind < argc) {
			snprintf(err, errlen,
				 "run: --restore takes the VM (image, memory, devices) from the "
				 "snapshot; only --name, --timeout, --stats and --verify go with "
				 "it");
			return -1;
		}
		cfg->cmdline = opt_join_args(0, NULL);
		return cfg->cmdline ? 0 : -1;
	}
	if (cfg->kernel && optind < argc) {
		snprintf(err, errlen, "run: '%s': give either IMAGE or --kernel, not both",
			 argv[optind]);
		return -1;
	}
	if (!cfg->kernel && (cfg->initrd || cfg->kernel_cmdline)) {
		snprintf(err, errlen, "run: %s needs --kernel",
			 cfg->initrd ? "--initrd" : "--cmdline");
		return -1;
	}
	if (cfg->kernel) {
		if (!cfg->mem_given)
			cfg->mem = LINUX_DEFAULT_MEM;
		cfg->cmdline = opt_join_args(0, NULL);
		return cfg->cmdline ? 0 : -1;
	}
	if (optind >= argc) {
		snprintf(err, errlen, "run: no image given");
		return -1;
	}
	cfg->image = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	cfg->cmdline = opt_join_args(argc - optind, argv + optind);
	if (!cfg->cmdline) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Map how the VM stopped to the process exit code, telling the user why. */
int run_outcome(struct vm *vm, const struct run_config *cfg)
{
	switch (atomic_load(&vm->stop)) {
	case VM_STOP_EXIT:
		return vm->exit_status;
	case VM_STOP_TIMEOUT:
		fprintf(stderr, "wisp: guest stopped: --timeout of %llu ms elapsed\n",
			(unsigned long long)cfg->timeout_ms);
		return WISP_EXIT_TIMEOUT;
	case VM_STOP_SIGNAL:
		fprintf(stderr, "wisp: guest stopped by signal %s\n",
			sigabbrev_np(vm->stop_signal));
		return WISP_EXIT_SIGNAL + vm->stop_signal;
	case VM_STOP_CRASH:
		vm_print_crash(vm, 2);
		return WISP_EXIT_CRASH;
	case VM_STOP_RESET:
		return 0; /* the guest rebooted: that is how a Linux guest powers off */
	default:
		fprintf(stderr, "wisp: %s\n", vm->crash);
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
	struct device *rng = vm_find_device(vm, "rng-device");
	if (rng) {
		struct rng_stats r;
		rng_get_stats(rng->opaque, &r);
		fprintf(stderr,
			"wisp: rng-device: reads %llu (%llu bytes) seeds %llu ignored %llu\n",
			(unsigned long long)r.reads, (unsigned long long)r.reads * 4,
			(unsigned long long)r.seeds, (unsigned long long)r.ignored);
	}
	virtio_print_stats(vm, 2);
}

int run_vm_foreground(struct vm *vm, const struct run_config *cfg)
{
	if (cfg->name) {
		char err[WISP_ERRLEN];
		if (run_control_start(vm, cfg, err, sizeof(err))) {
			fprintf(stderr, "wisp: --name '%s': %s\n", cfg->name, err);
			return -1;
		}
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
	vm_run(vm);
	util_trace("guest stopped");
	struct itimerval off = {0};
	setitimer(ITIMER_REAL, &off, NULL);
	running_vm = NULL;
	if (cfg->name)
		run_control_stop();
	return 0;
}

/* The options that rebuild this VM, for its snapshots' CONFIG record:
 * "wisp-run" and every argument but those about this one run. */
static int build_config(int argc, char **argv, struct run_config *cfg)
{
	static const char *const skip_arg[] = {"--name", "--timeout", "-t", "--restore"};
	static const char *const skip[] = {"--stats", "-s", "--verify"};
	struct wbuf b = {0};
	wbuf_put(&b, "wisp-run", 9);
	for (int i = 1; i < argc; i++) {
		bool drop = false;
		for (size_t k = 0; k < sizeof(skip_arg) / sizeof(skip_arg[0]); k++) {
			size_t n = strlen(skip_arg[k]);
			if (!strcmp(argv[i], skip_arg[k])) {
				drop = true;
				i++; /* and its value */
			} else if (!strncmp(argv[i], skip_arg[k], n) && argv[i][n] == '=') {
				drop = true;
			}
		}
		for (size_t k = 0; k < sizeof(skip) / sizeof(skip[0]); k++)
			drop |= !strcmp(argv[i], skip[k]);
		if (!drop && i < argc)
			wbuf_put(&b, argv[i], strlen(argv[i]) + 1);
	}
	if (wbuf_error(&b)) {
		wbuf_free(&b);
		return -1;
	}
	cfg->config = (char *)b.p;
	cfg->config_len = b.len;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_config cfg;
	char err[WISP_ERRLEN];
	util_trace("main");
	int r = run_parse_args(argc, argv, &cfg, err, sizeof(err));
	if (r) {
		virtio_args_free(&cfg.virtio);
		if (r > 0) {
			fputs(usage, stdout);
			return 0;
		}
		fprintf(stderr, "wisp: %s\n%s", err, usage);
		return WISP_EXIT_ERROR;
	}
	int code;
	if (cfg.restore)
		code = run_restore(&cfg);
	else if (build_config(argc, argv, &cfg))
		code = WISP_EXIT_ERROR;
	else
		code = cfg.kernel ? run_linux(&cfg) : run_unikernel(&cfg);
	free(cfg.cmdline);
	free(cfg.config);
	virtio_args_free(&cfg.virtio);
	return code;
}

int run_unikernel(struct run_config *cfg)
{
	char err[WISP_ERRLEN];
	int r;
	/* Everything about the image is checked before KVM is touched (a
	 * restore has no image: its snapshot was checked instead). */
	uint8_t *img = NULL;
	size_t size = 0;
	int code = WISP_EXIT_ERROR;
	struct kvm kvm = {.fd = -1};
	struct vm *vm = NULL;
	struct elf_image ei = {0};
	if (cfg->snap) {
		ei.wisp.flags =
			cfg->snap->img.vm.flags & SNAP_VM_SPLIT_IRQCHIP ? 0 : WISP_NOTE_CPL0;
		goto checked;
	}
	r = util_read_file(cfg->image, WISP_MAX_MEM, &img, &size);
	if (r) {
		fprintf(stderr, "wisp: image '%s': %s\n", cfg->image, util_file_error(r));
		return WISP_EXIT_ERROR;
	}
	if (elf_parse(img, size, &ei, err, sizeof(err)) == 0 && !ei.has_wisp_note)
		snprintf(err, sizeof(err), "ELF has no Wisp note: not a Wisp unikernel");
	if (!ei.has_wisp_note) {
		fprintf(stderr, "wisp: image '%s': %s\n", cfg->image, err);
		goto out;
	}
checked:
	if (cfg->cpus != 1) {
		fprintf(stderr,
			"wisp: image '%s': unikernels run on exactly 1 vCPU (--cpus %d given)\n",
			cfg->image, cfg->cpus);
		goto out;
	}
	/* Device backends too: a bad --disk path fails here, without KVM. */
	if (virtio_args_open(&cfg->virtio, err, sizeof(err))) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	util_trace("image read");
	if (kvm_open(&kvm, err, sizeof(err))) {
		fprintf(stderr, "wisp: %s\n", err);
		goto out;
	}
	util_trace("kvm opened, CPUID queried");
	vm = calloc(1, sizeof(*vm));
	if (!vm || vm_create(vm, &kvm, cfg->mem, err, sizeof(err))) {
		fprintf(stderr, "wisp: cannot create the VM: %s\n", vm ? err : "out of memory");
		goto out;
	}
	/* A CPL3 application cannot execute HLT (it faults and is reported), so
	 * such VMs lose nothing with an in-kernel LAPIC, and gain speed. CPL0
	 * images keep the user-space HLT exit so that a halt is reported. */
	if (!(ei.wisp.flags & WISP_NOTE_CPL0))
		vm_enable_split_irqchip(vm); /* an optimisation: fine if absent */
	if (vcpu_signals_init() || vm_create_vcpus(vm, cfg->cpus, err, sizeof(err)) ||
	    hypercall_register(vm)) {
		fprintf(stderr, "wisp: cannot create the VM: %s\n", err);
		goto out;
	}
	util_trace("VM, memory and vCPU created");
	if (cfg->rng_device && (r = rng_attach(vm, cfg->rng_seeded ? &cfg->rng_seed : NULL))) {
		fprintf(stderr, "wisp: cannot attach the RNG device: %s\n", strerror(-r));
		goto out;
	}
	if (virtio_args_attach(&cfg->virtio, vm, err, sizeof(err))) {
		fprintf(stderr, "wisp: cannot attach devices: %s\n", err);
		goto out;
	}
	if (cfg->snap) {
		if (snap_restore_file(vm, cfg->snap, cfg->verify, NULL, err, sizeof(err))) {
			fprintf(stderr, "wisp: snapshot '%s': %s\n", cfg->restore, err);
			goto out;
		}
	} else {
		if (x86_boot_unikernel(vm, img, size, cfg->cmdline, err, sizeof(err))) {
			fprintf(stderr, "wisp: image '%s': %s\n", cfg->image, err);
			goto out;
		}
		struct wisp_device table[WISP_MAX_DEVICES];
		x86_unikernel_set_devices(
			vm, table, (uint32_t)virtio_device_table(vm, table, WISP_MAX_DEVICES));
	}
	free(img);
	img = NULL;

	if (run_vm_foreground(vm, cfg))
		goto out;
	code = run_outcome(vm, cfg);
	if (cfg->stats)
		run_print_stats(vm);
out:
	if (vm)
		vm_destroy(vm);
	free(vm);
	if (kvm.fd >= 0)
		kvm_close(&kvm);
	free(img);
	util_trace("VM destroyed");
	return code;
}
