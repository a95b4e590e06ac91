/* The command-line layer: one file per verb, shared option parsing. Only
 * this layer prints messages for the user and chooses exit codes. */
#ifndef WISP_CLI_H
#define WISP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/virtio_args.h"

/* Process exit codes of `wisp run` besides the guest's own status (0..255). */
#define WISP_EXIT_TIMEOUT 124 /* --timeout elapsed */
#define WISP_EXIT_ERROR	  125 /* Wisp could not start the VM: bad input, no KVM */
#define WISP_EXIT_CRASH	  126 /* the guest crashed (fault, triple fault, KVM error) */
#define WISP_EXIT_SIGNAL  128 /* + signal number: stopped by SIGINT/SIGTERM */

#define WISP_DEFAULT_MEM (32ull << 20)
#define WISP_MIN_MEM	 (2ull << 20)
#define WISP_MAX_MEM	 (64ull << 30)

/* What `wisp run` was asked to do. */
struct run_config {
	uint64_t mem; /* bytes */
	int cpus;
	uint64_t timeout_ms; /* 0: none */
	bool stats;	     /* print exit statistics on stderr at the end */
	bool rng_device;     /* --rng-device: attach the course's PCI RNG device */
	bool rng_seeded;     /* --rng-device=SEED: start it from rng_seed */
	uint32_t rng_seed;
	const char *image;
	char *cmdline;		   /* guest arguments joined by spaces (malloc'd) */
	struct virtio_args virtio; /* --rng, --disk, --net, --console, --vsock */
	/* Linux guests (run_linux.c) */
	const char *kernel; /* --kernel: bzImage or PVH vmlinux; NULL: IMAGE is a unikernel */
	const char *initrd; /* --initrd, or NULL */
	const char *kernel_cmdline; /* --cmdline, or NULL for LINUX_DEFAULT_CMDLINE */
	bool mem_given;		    /* --mem was on the command line */
};

#define LINUX_DEFAULT_MEM     (128ull << 20)
#define LINUX_DEFAULT_CMDLINE "console=ttyS0 reboot=t panic=-1"

/* --- options.c --------------------------------------------------------- */
/* Parse a size: a number with an optional K, M or G suffix (powers of 1024);
 * a bare number means MiB. */
int opt_parse_size(const char *s, uint64_t *out);
/* Parse an unsigned integer in [min, max]. */
int opt_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parse a duration: a number with an optional ms, s or m suffix; a bare
 * number means seconds. Result in milliseconds, > 0. */
int opt_parse_duration_ms(const char *s, uint64_t *out);
/* Join argv[0..argc) with spaces, quoting words that hold spaces; NULL if
 * out of memory. */
char *opt_join_args(int argc, char **argv);

/* --- cmd_run.c ---------------------------------------------------------- */
/* Parse `wisp run` arguments (argv[0] is "run") into cfg; on error writes a
 * one-line message into err and returns -1. */
int run_parse_args(int argc, char **argv, struct run_config *cfg, char *err, size_t errlen);
/* `wisp run`: boot an image in the foreground; returns the process exit code. */
int cmd_run(int argc, char **argv);
struct vm;
/* Run a prepared VM in the foreground: SIGINT/SIGTERM/--timeout stop it. */
void run_vm_foreground(struct vm *vm, const struct run_config *cfg);
/* Tell the user how the VM stopped; returns the process exit code. */
int run_outcome(struct vm *vm, const struct run_config *cfg);
/* Print the exit counters on stderr (--stats). */
void run_print_stats(struct vm *vm);

/* --- run_linux.c --------------------------------------------------------- */
/* `wisp run --kernel`: boot Linux; returns the process exit code. */
int run_linux(struct run_config *cfg);

#endif
