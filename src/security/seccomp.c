/* Per-thread seccomp allowlists for the VMM (docs/security.md).
 *
 * Three layers, built with libseccomp when the VMM is set up and about to
 * run its guest (sec_seccomp_start):
 *   1. a process-wide filter, the union of every thread's list, loaded with
 *      TSYNC: every thread that exists then (I/O loops, the serial input
 *      thread) and every thread created later is confined at once;
 *   2. the calling thread's own list (the control thread: vCPU 0, the
 *      control channel, snapshots, the migration's start and the teardown);
 *   3. each other thread narrows itself to its kind's list as soon as it
 *      runs (sec_seccomp_thread): vCPU threads at their start, I/O loops at
 *      their next wake-up, the migration thread at its start.
 * Filters only ever add up, so a thread's effective list is the
 * intersection of its layers. A call outside the list raises SIGSYS
 * (SECCOMP_RET_TRAP): the handler writes one line naming the call and the
 * thread and ends the whole VMM with WISP_EXIT_SECCOMP. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <linux/if_tun.h>
#include <termios.h>
#include <ucontext.h>

#include "security/security.h"

#define SEC_MAX_NR 512 /* syscall numbers named in a report (x86-64 has ~460) */

static const char *const kind_names[SEC_THREAD_KINDS] = {
	[SEC_THREAD_OTHER] = "other",	    [SEC_THREAD_CONTROL] = "control",
	[SEC_THREAD_VCPU] = "vcpu",	    [SEC_THREAD_IO] = "io",
	[SEC_THREAD_MIGRATE] = "migration",
};

/* --- the lists ------------------------------------------------------------ */

/* What any VMM thread may do: lock, allocate (never executable memory, see
 * the mmap rule), wait, kick another thread, write its output (console,
 * eventfds, the trap's report) and end. */
static const int sys_common[] = {
	SCMP_SYS(futex),
	SCMP_SYS(brk),
	SCMP_SYS(munmap),
	SCMP_SYS(madvise),
	SCMP_SYS(mremap),
	SCMP_SYS(read),
	SCMP_SYS(write),
	SCMP_SYS(writev),
	SCMP_SYS(close),
	SCMP_SYS(ppoll),
	SCMP_SYS(poll),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigtimedwait),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(tgkill),
	SCMP_SYS(getpid),
	SCMP_SYS(gettid),
	SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_nanosleep),
	SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday),
	SCMP_SYS(sched_yield),
	SCMP_SYS(getrandom),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
	SCMP_SYS(fcntl),
	SCMP_SYS(sendmsg),
	SCMP_SYS(sendto),
	SCMP_SYS(rseq),
	SCMP_SYS(set_robust_list),
	SCMP_SYS(timerfd_settime), /* a rate limiter's refill timer (ioloop.h) */
	SCMP_SYS(timerfd_gettime),
};

/* I/O loops: epoll, the device back ends (files, io_uring, TAP, unix
 * sockets of virtio-console and vsock; fstat: a console client's outlet). */
static const int sys_io[] = {
	SCMP_SYS(fstat),	  SCMP_SYS(newfstatat), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
	SCMP_SYS(epoll_ctl),	  SCMP_SYS(readv),	SCMP_SYS(preadv),     SCMP_SYS(pwritev),
	SCMP_SYS(pread64),	  SCMP_SYS(pwrite64),	SCMP_SYS(fsync),      SCMP_SYS(fdatasync),
	SCMP_SYS(io_uring_enter), SCMP_SYS(recvfrom),	SCMP_SYS(recvmsg),    SCMP_SYS(accept4),
	SCMP_SYS(connect),	  SCMP_SYS(shutdown),	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	SCMP_SYS(lseek),
};

/* The control thread: vCPU 0 plus the control channel (accept, messages),
 * snapshots (a file created, written, synced, renamed into place; guest
 * memory's extents), the threads it starts, the console's reopening, and
 * the teardown. */
static const int sys_control[] = {
	SCMP_SYS(epoll_wait),	SCMP_SYS(epoll_pwait),	  SCMP_SYS(epoll_ctl),
	SCMP_SYS(accept4),	SCMP_SYS(recvfrom),	  SCMP_SYS(recvmsg),
	SCMP_SYS(getsockopt),	SCMP_SYS(setsockopt),	  SCMP_SYS(shutdown),
	SCMP_SYS(connect),	SCMP_SYS(openat),	  SCMP_SYS(open),
	SCMP_SYS(fstat),	SCMP_SYS(newfstatat),	  SCMP_SYS(statx),
	SCMP_SYS(lseek),	SCMP_SYS(pread64),	  SCMP_SYS(pwrite64),
	SCMP_SYS(preadv),	SCMP_SYS(pwritev),	  SCMP_SYS(readv),
	SCMP_SYS(ftruncate),	SCMP_SYS(fallocate),	  SCMP_SYS(fsync),
	SCMP_SYS(fdatasync),	SCMP_SYS(rename),	  SCMP_SYS(renameat),
	SCMP_SYS(renameat2),	SCMP_SYS(unlink),	  SCMP_SYS(unlinkat),
	SCMP_SYS(mincore),	SCMP_SYS(io_uring_enter), SCMP_SYS(setitimer),
	SCMP_SYS(rt_sigaction), SCMP_SYS(readlink),	  SCMP_SYS(dup),
	SCMP_SYS(dup3),		SCMP_SYS(getuid),	  SCMP_SYS(geteuid),
	SCMP_SYS(seccomp),	SCMP_SYS(prctl),	  SCMP_SYS(wait4),
	SCMP_SYS(getdents64),
};

/* The migration thread: its TCP connection to the target, the dirty log
 * (ioctls on the VM fd) and guest memory. */
static const int sys_migrate[] = {
	SCMP_SYS(connect),    SCMP_SYS(recvfrom),   SCMP_SYS(recvmsg),
	SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(shutdown),
	SCMP_SYS(pread64),    SCMP_SYS(lseek),	    SCMP_SYS(mincore),
};

/* The ioctls of a running vCPU: its run loop, a crash's registers, the
 * POLL hypercall's completion, interrupt lines and the ioeventfds/irqfds
 * virtio-mmio registers when the driver starts a queue. */
static const unsigned long vcpu_ioctls[] = {
	KVM_RUN,       KVM_GET_REGS,  KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
	KVM_IRQ_LINE,  KVM_IOEVENTFD, KVM_IRQFD,    KVM_GET_MSRS,  KVM_SET_MSRS,
	KVM_GET_LAPIC, KVM_SET_LAPIC, TCGETS,	    TUNSETOFFLOAD,
};
/* The control thread's: a vCPU's, plus reading every piece of state for a
 * snapshot and the dirty log for a migration. */
static const unsigned long control_ioctls[] = {
	KVM_CHECK_EXTENSION,
	KVM_GET_MSR_INDEX_LIST,
	KVM_GET_CPUID2,
	KVM_GET_TSC_KHZ,
	KVM_GET_CLOCK,
	KVM_GET_IRQCHIP,
	KVM_GET_FPU,
	KVM_GET_XSAVE,
	KVM_GET_XSAVE2,
	KVM_GET_XCRS,
	KVM_GET_VCPU_EVENTS,
	KVM_GET_DEBUGREGS,
	KVM_GET_MP_STATE,
	KVM_GET_DIRTY_LOG,
	KVM_CLEAR_DIRTY_LOG,
	KVM_ENABLE_CAP,
	KVM_SET_USER_MEMORY_REGION,
	KVM_SET_SIGNAL_MASK,
	FIONREAD,
};
/* The I/O loops': interrupt lines (guests without irqfd), readiness of a
 * socket or TAP. */
static const unsigned long io_ioctls[] = {KVM_IRQ_LINE, FIONREAD, TCGETS};

/* What the sanitizer runtime (ASan, LSan, UBSan) does on the threads of a
 * test build: LSan's leak check at exit stops the world from a helper task
 * (clone without CLONE_THREAD, ptrace, /proc/self/task), reports read
 * /proc/self/maps, and a new thread sets up its alternate signal stack. A
 * release build has none of these. */
static const int sys_sanitizer[] = {
	SCMP_SYS(sigaltstack),
	SCMP_SYS(ptrace),
	SCMP_SYS(wait4),
	SCMP_SYS(getdents64),
	SCMP_SYS(openat),
	SCMP_SYS(readlink),
	SCMP_SYS(sched_getaffinity),
	SCMP_SYS(prctl),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(getppid),
	SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(mprotect),
	SCMP_SYS(kill),
	SCMP_SYS(clone),
	SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64),
	SCMP_SYS(sched_setaffinity),
	SCMP_SYS(pipe2),
	SCMP_SYS(dup2),
	SCMP_SYS(setrlimit),
	SCMP_SYS(lseek),
	SCMP_SYS(getuid),
	SCMP_SYS(uname),
	SCMP_SYS(getdents),
	SCMP_SYS(open),
};

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SEC_SANITIZER 1
#else
#define SEC_SANITIZER 0
#endif

/* --- state --------------------------------------------------------------- */

static struct {
	_Atomic bool armed;
	bool built;
	struct sock_fprog prog[SEC_THREAD_KINDS];
	void (*report)(const char *line, size_t len);
	_Atomic int reporting;
	const char *names[SEC_MAX_NR];
#ifdef WISP_TEST_HOOKS
	int violate; /* the kind that calls a forbidden syscall, or -1 */
#endif
} sc = {
#ifdef WISP_TEST_HOOKS
	.violate = -1,
#endif
};

static __thread int tls_kind; /* enum sec_thread of this thread */
static __thread bool tls_narrowed;

#define ADD(ctx, nr, ...)                                                                          \
	do {                                                                                       \
		int r_ = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, __VA_ARGS__);                   \
		if (r_ && r_ != -EEXIST)                                                           \
			return r_;                                                                 \
	} while (0)

static int add_list(scmp_filter_ctx ctx, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ADD(ctx, nrs[i], 0);
	return 0;
}

static int add_ioctls(scmp_filter_ctx ctx, const unsigned long *req, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ADD(ctx, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, req[i], 0));
	return 0;
}

#define LIST(ctx, a)   add_list(ctx, a, sizeof(a) / sizeof(a[0]))
#define IOCTLS(ctx, a) add_ioctls(ctx, a, sizeof(a) / sizeof(a[0]))

/* The rules with arguments every list shares: no executable mappings, and
 * new tasks only as threads of this process. clone3's flags sit in memory
 * a filter cannot read: it fails with ENOSYS, and glibc falls back to
 * clone. */
static int add_common(scmp_filter_ctx ctx)
{
	int r = LIST(ctx, sys_common);
	if (r)
		return r;
	ADD(ctx, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	ADD(ctx, SCMP_SYS(mprotect), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	return r == -EEXIST ? 0 : r;
}

/* Threads may be started by the control thread (vCPUs, the migration, a
 * snapshot's closer) and the process-wide filter. */
static int add_clone(scmp_filter_ctx ctx)
{
	ADD(ctx, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	return 0;
}

/* Sockets: unix ones for every kind that has sockets (vsock, console,
 * control), TCP over IPv4/IPv6 for the migration. */
static int add_socket(scmp_filter_ctx ctx, bool inet)
{
	ADD(ctx, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0));
	if (inet) {
		ADD(ctx, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET, 0));
		ADD(ctx, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0));
	}
	return 0;
}

static int add_kind(scmp_filter_ctx ctx, int kind)
{
	int r = 0;
	switch (kind) {
	case SEC_THREAD_VCPU:
		/* The common list and its ioctls, and epoll_ctl: a device served
		 * on a vCPU (a notify of an odd width) may re-arm its fd in the
		 * I/O loop's set. */
		ADD(ctx, SCMP_SYS(epoll_ctl), 0);
		return IOCTLS(ctx, vcpu_ioctls);
	case SEC_THREAD_IO:
		if ((r = LIST(ctx, sys_io)) || (r = IOCTLS(ctx, io_ioctls)))
			return r;
		return add_socket(ctx, false);
	case SEC_THREAD_MIGRATE:
		/* The stop-and-copy reads every vCPU's state, as a snapshot does;
		 * a restored VM's written pages come from /proc/self/pagemap,
		 * opened read-only. */
		if ((r = LIST(ctx, sys_migrate)) || (r = IOCTLS(ctx, vcpu_ioctls)) ||
		    (r = IOCTLS(ctx, control_ioctls)))
			return r;
		ADD(ctx, SCMP_SYS(openat), 1,
		    SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY));
		ADD(ctx, SCMP_SYS(open), 1,
		    SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC, O_RDONLY));
		return add_socket(ctx, true);
	case SEC_THREAD_CONTROL:
		if ((r = LIST(ctx, sys_control)) || (r = IOCTLS(ctx, vcpu_ioctls)) ||
		    (r = IOCTLS(ctx, control_ioctls)) || (r = add_clone(ctx)))
			return r;
		return add_socket(ctx, true);
	}
	return 0;
}

/* The BPF program of one list; SEC_THREAD_OTHER is the union of all. */
static int build(int kind, struct sock_fprog *out)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	int r = add_common(ctx);
	if (!r && kind == SEC_THREAD_OTHER)
		for (int k = SEC_THREAD_CONTROL; k < SEC_THREAD_KINDS && !r; k++)
			r = add_kind(ctx, k);
	else if (!r)
		r = add_kind(ctx, kind);
	if (!r && SEC_SANITIZER && (kind == SEC_THREAD_OTHER || kind == SEC_THREAD_CONTROL))
		r = LIST(ctx, sys_sanitizer);
	if (!r && SEC_SANITIZER)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sigaltstack), 0);
	if (r == -EEXIST)
		r = 0;
	/* A binary tree of syscall numbers: the vCPU's KVM_RUN does not walk
	 * a list of every allowed call. */
	if (!r)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	/* The program, exported through a memfd (libseccomp 2.5 writes to an
	 * fd) and kept, so that a thread installs it with one system call. */
	int fd = r ? -1 : memfd_create("wisp-seccomp", MFD_CLOEXEC);
	if (!r && fd < 0)
		r = -errno;
	if (!r)
		r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	off_t len = r ? 0 : lseek(fd, 0, SEEK_END);
	if (!r && (len <= 0 || len % sizeof(struct sock_filter) || len > 65536))
		r = -EINVAL;
	struct sock_filter *f = r ? NULL : malloc((size_t)len);
	if (!r && !f)
		r = -ENOMEM;
	if (!r && pread(fd, f, (size_t)len, 0) != len)
		r = -EIO;
	if (fd >= 0)
		close(fd);
	if (r) {
		free(f);
		return r;
	}
	out->len = (unsigned short)(len / sizeof(struct sock_filter));
	out->filter = f;
	return 0;
}

/* --- the trap ---------------------------------------------------------------- */

static char *put(char *o, const char *end, const char *s)
{
	while (*s && o < end)
		*o++ = *s++;
	return o;
}

static char *put_hex(char *o, const char *end, unsigned long v)
{
	o = put(o, end, "0x");
	int shift = 60;
	while (shift > 0 && !(v >> shift))
		shift -= 4;
	for (; shift >= 0 && o < end; shift -= 4)
		*o++ = "0123456789abcdef"[(v >> shift) & 15];
	return o;
}

static char *put_num(char *o, const char *end, long v)
{
	char d[24];
	int n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do
		d[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < (int)sizeof(d));
	if (v < 0 && o < end)
		*o++ = '-';
	while (n && o < end)
		*o++ = d[--n];
	return o;
}

/* Async-signal-safe: no allocation, no stdio, no locks. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	int expected = 0;
	if (!atomic_compare_exchange_strong(&sc.reporting, &expected, 1))
		for (;;) /* another thread reports and ends the process */
			sched_yield();
	char line[160], *o = line, *end = line + sizeof(line) - 1;
	int nr = si->si_syscall;
	const char *name = nr >= 0 && nr < SEC_MAX_NR && sc.names[nr] ? sc.names[nr] : "unknown";
	int kind = tls_kind >= 0 && tls_kind < SEC_THREAD_KINDS ? tls_kind : SEC_THREAD_OTHER;
	o = put(o, end, "seccomp: forbidden system call ");
	o = put(o, end, name);
	o = put(o, end, " (");
	o = put_num(o, end, nr);
	o = put(o, end, ")");
	/* The argument an allowlist looks at, for the lists' maintainers. */
	const greg_t *regs = ((const ucontext_t *)uc)->uc_mcontext.gregs;
	const char *what = nr == SCMP_SYS(ioctl)			      ? " request "
			   : nr == SCMP_SYS(socket)			      ? " family "
			   : nr == SCMP_SYS(clone)			      ? " flags "
			   : nr == SCMP_SYS(mmap) || nr == SCMP_SYS(mprotect) ? " prot "
									      : NULL;
	if (what) {
		int reg = nr == SCMP_SYS(ioctl)				    ? REG_RSI
			  : nr == SCMP_SYS(socket) || nr == SCMP_SYS(clone) ? REG_RDI
									    : REG_RDX;
		o = put(o, end, what);
		o = put_hex(o, end, (unsigned long)regs[reg]);
	}
	o = put(o, end, " on the ");
	o = put(o, end, kind_names[kind]);
	o = put(o, end, " thread");
	*o = 0;
	static const char prefix[] = "wisp: ";
	ssize_t w = write(2, prefix, sizeof(prefix) - 1);
	w = write(2, line, (size_t)(o - line));
	w = write(2, "\n", 1);
	(void)w;
	if (sc.report)
		sc.report(line, (size_t)(o - line));
	_exit(WISP_EXIT_SECCOMP);
}

/* --- the interface ----------------------------------------------------------- */

int sec_seccomp_parse(const char *arg, bool *on)
{
	if (!strcmp(arg, "on"))
		*on = true;
	else if (!strcmp(arg, "off"))
		*on = false;
	else
		return -EINVAL;
	return 0;
}

void sec_seccomp_set_report(void (*fn)(const char *line, size_t len))
{
	sc.report = fn;
}

const char *sec_thread_name(enum sec_thread kind)
{
	return kind >= 0 && kind < SEC_THREAD_KINDS ? kind_names[kind] : "other";
}

bool sec_seccomp_active(void)
{
	return atomic_load_explicit(&sc.armed, memory_order_acquire);
}

static int load(const struct sock_fprog *p, unsigned flags)
{
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, p);
	if (r > 0) /* TSYNC: the id of a thread that could not be synchronised */
		return -EBUSY;
	return r < 0 ? -errno : 0;
}

#ifdef WISP_TEST_HOOKS
/* The test hook: $WISP_TEST_SECCOMP_VIOLATE = KIND or KIND:VMNAME makes the
 * thread of that kind (of that VM) call personality(2), which no list
 * allows, once its filter is on. Compiled into test builds only. */
static void read_test_hook(const char *vm_name)
{
	const char *v = getenv("WISP_TEST_SECCOMP_VIOLATE");
	if (!v)
		return;
	const char *colon = strchr(v, ':');
	size_t klen = colon ? (size_t)(colon - v) : strlen(v);
	if (colon && (!vm_name || strcmp(colon + 1, vm_name)))
		return;
	for (int k = 0; k < SEC_THREAD_KINDS; k++)
		if (strlen(kind_names[k]) == klen && !strncmp(v, kind_names[k], klen))
			sc.violate = k;
}

static void test_hook(int kind)
{
	if (sc.violate == kind)
		syscall(SYS_personality, 0xffffffffUL);
}
#else
#define read_test_hook(n) ((void)(n))
#define test_hook(k)	  ((void)(k))
#endif

void sec_seccomp_thread(enum sec_thread kind)
{
	if (tls_narrowed || (tls_kind == (int)kind && !sec_seccomp_active()))
		return;
	if (tls_kind != (int)kind) {
		/* A blocked SIGSYS would be forced to its default action (a core
		 * dump, no report): threads that block every signal let it in. */
		tls_kind = (int)kind;
		sigset_t sys;
		sigemptyset(&sys);
		sigaddset(&sys, SIGSYS);
		pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	}
	if (!sec_seccomp_active())
		return;
	tls_narrowed = true;
	/* Failing here leaves the thread under the process-wide filter,
	 * which is still on: nothing to report that the caller could do. */
	load(&sc.prog[kind], 0);
	test_hook(kind);
}

int sec_seccomp_prepare(char *err, size_t errlen)
{
	if (sc.built)
		return 0;
	for (int nr = 0; nr < SEC_MAX_NR; nr++) {
		char *n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		sc.names[nr] = n; /* kept for the life of the process */
	}
	for (int k = 0; k < SEC_THREAD_KINDS; k++) {
		int r = build(k, &sc.prog[k]);
		if (r) {
			snprintf(err, errlen, "cannot build the %s filter: %s", kind_names[k],
				 strerror(-r));
			return r;
		}
	}
	sc.built = true;
	return 0;
}

int sec_seccomp_start(bool on, const char *vm_name, char *err, size_t errlen)
{
	if (!on)
		return 0;
	read_test_hook(vm_name);
	int r = sec_seccomp_prepare(err, errlen);
	if (r)
		return r;
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		snprintf(err, errlen, "SIGSYS handler: %s", strerror(errno));
		return -errno;
	}
	sigset_t sys;
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -errno;
	}
	r = load(&sc.prog[SEC_THREAD_OTHER], SECCOMP_FILTER_FLAG_TSYNC);
	if (!r)
		r = load(&sc.prog[SEC_THREAD_CONTROL], 0);
	if (r) {
		snprintf(err, errlen, "cannot load the filter: %s", strerror(-r));
		return r;
	}
	tls_kind = SEC_THREAD_CONTROL;
	tls_narrowed = true;
	atomic_store_explicit(&sc.armed, true, memory_order_release);
	test_hook(SEC_THREAD_CONTROL);
	return 0;
}
