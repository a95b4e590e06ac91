/* wisp-vmm: one VM per process, under wispd (ctl_proto.h).
 *
 * Started by wispd as a *shell*: it opens /dev/kvm, creates the VM, its
 * guest RAM, the vCPU (warmed by one dummy run at CPL3 so that the first real
 * KVM_RUN finds KVM's per-vCPU state and shadow pages ready), the console
 * ring and its control socket, says READY and waits. A create sends it the
 * image and arguments: it loads them, says so, and enters KVM_RUN.
 *
 * The process is single-threaded (besides KVM's own per-VM worker), so that
 * 10,000 VMs fit in the pid budget: the vCPU runs on the main thread, and
 * control messages reach it by signal-driven I/O (O_ASYNC + F_SETSIG with
 * the vCPU kick signal), which makes KVM_RUN return; vcpu_wait() also wakes
 * for them while the guest sleeps in its POLL hypercall. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <netinet/in.h>
#include <pthread.h>

#include "arch/x86/x86.h"
#include "vmm/config.h"
#include "control/ctl_proto.h"
#include "devices/virtio/virtio.h"
#include "security/security.h"
#include "snapshot/snapshot.h"

/* The one VM of this process. Static: signal handlers reach it. */
static struct shell {
	struct kvm kvm;
	struct vm vm;
	struct ring ring;
	int conn;      /* connection to wispd, -1 when there is none */
	int listen_fd; /* ctl.sock: how a restarted wispd finds us */
	int epfd;      /* conn + listen_fd; the VM's ctl_fd */
	bool paused;
	bool configured;
	/* Pre-faulted scratch for configuring: the configuration message, then
	 * a small image. Unmapped before the guest runs: a buffer on the stack
	 * would stay resident for the VM's whole life. */
	uint8_t *scratch;
	struct ctl_info me; /* identity, state, times */
	/* Live migration: a thread of its own while it runs (the vCPU keeps
	 * running on the main thread during the pre-copy rounds). */
	pthread_t mig_thread;
	_Atomic bool migrating;
	struct ctl_target mig_to;
	int mig_chan; /* the migration's transport (wisp-tls), -1 when none */
	char migrated_to[300];
	/* The shape of the prepared VM (--cpus, --linux): a unikernel's of
	 * one vCPU, or a Linux guest's that configure_built keeps. */
	struct vm_shape shape;
	/* A VM made by the builder from its configuration (configure_built). */
	bool built;
	bool seccomp; /* the filters go on before the guest runs (--seccomp) */
	struct vm_config cfg;
	struct serial *serial;
	/* Its snapshots' CONFIG record (SNAP_CONFIG_TAG + JSON), made when it
	 * was built: a jailed VMM cannot look at its disks later. */
	char *record;
	size_t record_len;
	/* The jail (--jail-uid): entered once the VM is built. */
	struct jail jail;
	bool jailed;
	int status_fd; /* the status file, opened before the jail hides its directory */
} sh = {.conn = -1, .listen_fd = -1, .epfd = -1, .status_fd = -1, .mig_chan = -1, .seccomp = true};

/* What a snapshot of a daemon VM says about how to rebuild it. */
static const char vmm_config[] = "wisp-vmm";

#define SCRATCH_SIZE   (256u << 10)
#define SCRATCH_WARM   (CTL_MSG_MAX + (64u << 10)) /* pre-faulted: config + small image */
#define IMAGE_BUF      (sh.scratch + CTL_MSG_MAX)
#define IMAGE_BUF_SIZE (SCRATCH_SIZE - CTL_MSG_MAX)

/* Our state and counters, as one message of `type`. */
static void fill_info(struct ctl_info *in, uint32_t type)
{
	*in = sh.me;
	in->type = type;
	in->first_hypercall_ns = sh.vm.first_hypercall_ns;
	vm_stats(&sh.vm, &in->exits);
	struct virtio_io_stats io[CTL_DEV_MAX];
	int n = sh.configured ? virtio_io_stats(&sh.vm, io, CTL_DEV_MAX) : 0;
	in->nr_devs = (uint32_t)n;
	for (int i = 0; i < n; i++) {
		struct ctl_dev_stats *o = &in->devs[i];
		snprintf(o->type, sizeof(o->type), "%s", io[i].type);
		o->slot = (uint32_t)io[i].slot;
		o->ops = io[i].ops;
		o->tx_bytes = io[i].tx_bytes;
		o->rx_bytes = io[i].rx_bytes;
		o->notifies = io[i].notifies;
		o->interrupts = io[i].interrupts;
		o->guest_errors = io[i].guest_errors;
	}
}

/* Send to wispd. The connection is non-blocking (it is drained from the
 * vCPU loop); a full socket means a busy wispd, which gets a second to
 * make room before the message is dropped. */
static void send_msg(const void *msg, size_t len)
{
	if (sh.conn < 0)
		return;
	for (int tries = 0; tries < 2; tries++) {
		if (ctl_send(sh.conn, msg, len, -1) != -EAGAIN)
			return;
		struct pollfd p = {.fd = sh.conn, .events = POLLOUT};
		poll(&p, 1, 1000);
	}
}

static void send_info(uint32_t type)
{
	struct ctl_info in;
	fill_info(&in, type);
	send_msg(&in, sizeof(in));
}

/* Tell wispd we failed (reason printf-style), with an errno class. */
static void send_failed(int error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_failed(int error, const char *fmt, ...)
{
	struct ctl_info in;
	fill_info(&in, CTL_FAILED);
	in.error = error;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in.reason, sizeof(in.reason), fmt, ap);
	va_end(ap);
	send_msg(&in, sizeof(in));
}

/* Run the vCPU once through code that touches what a small unikernel
 * touches first (its stack, the boot info page, the first WARM_PAGES pages
 * of the image area) and exits on a port nobody claims; then complete that
 * exit. The real start is then one KVM_RUN on a warm vCPU whose guest pages
 * are already backed and mapped (shadow or EPT entries). */
#define WARM_PAGES 8

static int warm_up(char *err, size_t errlen)
{
	struct vm *vm = &sh.vm;
	struct vcpu *v = &vm->vcpus[0];
	uint64_t low_top = vm->mem.regions[0].size;
	struct x86_boot64 b = {.entry = WISP_IMAGE_MIN, .stack_top = low_top & ~15ull};
	uint64_t map = vm->mem.size > X86_MMIO_HOLE_START
			       ? vm->mem.size + (X86_MMIO_HOLE_END - X86_MMIO_HOLE_START)
			       : X86_MMIO_HOLE_END;
	/* clang-format off */
	static const uint8_t code[] = {
		0x50,					     /* push %rax */
		0xbf, 0x00, 0x00, 0x10, 0x00,		     /* mov $WISP_IMAGE_MIN, %edi */
		0xb9, WARM_PAGES, 0x00, 0x00, 0x00,	     /* mov $WARM_PAGES, %ecx */
		0x80, 0x8f, 0xf0, 0x0f, 0x00, 0x00, 0x00,    /* 1: orb $0, 0xff0(%rdi) */
		0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00,    /* add $0x1000, %rdi */
		0xe2, 0xf0,				     /* loop 1b */
		0x8a, 0x04, 0x25, 0x00, 0x30, 0x00, 0x00,    /* mov WISP_BOOTINFO_GPA, %al */
		0x66, 0xba, CTL_WARMUP_PORT & 0xff, CTL_WARMUP_PORT >> 8, /* mov $port, %dx */
		0xee,					     /* out %al, (%dx) */
		0xeb, 0xfe,				     /* jmp . */
	};
	/* clang-format on */
	_Static_assert(WISP_IMAGE_MIN == 0x100000 && WISP_BOOTINFO_GPA == 0x3000,
		       "warm-up code hard-codes the layout");
	uint8_t *p = gmem_ptr(&vm->mem, WISP_IMAGE_MIN, sizeof(code));
	if (!gmem_ptr(&vm->mem, WISP_IMAGE_MIN, WARM_PAGES * 4096ull)) {
		snprintf(err, errlen, "guest memory too small");
		return -E2BIG;
	}
	int r = p ? x86_setup_unikernel(&vm->mem, &b, map) : -EFAULT;
	if (!r)
		r = x86_vcpu_enter64(v, &b);
	if (r) {
		snprintf(err, errlen, "cannot prepare the vCPU: %s", strerror(-r));
		return r;
	}
	memcpy(p, code, sizeof(code));
	if (ioctl(v->fd, KVM_RUN, 0) < 0 || v->run->exit_reason != KVM_EXIT_IO ||
	    v->run->io.port != CTL_WARMUP_PORT) {
		snprintf(err, errlen, "warm-up run failed (%s, exit reason %u)", strerror(errno),
			 v->run->exit_reason);
		return -EIO;
	}
	/* Complete the port exit now (KVM finishes it on the next entry), so
	 * that nothing of the dummy run is left for the real start. Ask KVM to
	 * leave the special registers in kvm_run on the way out: the real
	 * start then needs no KVM_GET_SREGS (about 5 us on nested KVMs). */
	if (sh.kvm.sync_regs)
		v->run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
	v->run->immediate_exit = 1;
	int rr = ioctl(v->fd, KVM_RUN, 0);
	v->run->immediate_exit = 0;
	if (rr == 0 || errno != EINTR) {
		snprintf(err, errlen, "warm-up completion failed: %s", strerror(errno));
		return -EIO;
	}
	memset(p, 0, sizeof(code));
	return 0;
}

static int prepare_control(void);

/* Make the shell's VM with the builder's first step (vm_build_shape, as
 * wisp run makes it): memory, the interrupt set-up, the vCPUs; for a
 * unikernel shell also the hypercall ports. The console ring. */
static int shell_make_vm(bool cpl0, char *err, size_t errlen)
{
	sh.shape.cpl0 = cpl0;
	int r = vm_build_shape(&sh.vm, &sh.kvm, &sh.shape, err, errlen);
	if (!r && !sh.shape.linux_guest && (r = hypercall_register(&sh.vm)))
		snprintf(err, errlen, "hypercall ports: %s", strerror(-r));
	sh.vm.console_ring = &sh.ring;
	return r;
}

/* Make the shell's VM again for a CPL0 unikernel (no LAPIC). A shell is
 * prepared for CPL3, with the in-kernel LAPIC, which KVM cannot take back:
 * memory and vCPU are made again, a few ms. Nothing to do for CPL3, or
 * where KVM has no split irqchip (then neither kind gets a LAPIC). */
static int reshape(bool cpl0, char *err, size_t errlen)
{
	if (!cpl0 || !sh.vm.split_irqchip)
		return 0;
	vm_destroy(&sh.vm);
	return shell_make_vm(true, err, errlen);
}

/* Everything that does not depend on the request. */
static int prepare(const char *id, uint64_t mem, uint64_t ring_size, char *err, size_t errlen)
{
	snprintf(sh.me.id, sizeof(sh.me.id), "%s", id);
	sh.me.pid = (int32_t)getpid();
	sh.me.mem = mem;
	sh.shape.mem = mem;
	sh.me.state = CTL_STATE_SHELL;
	int r = kvm_open(&sh.kvm, err, errlen);
	if (r)
		return r;
	if ((r = vcpu_signals_init())) {
		snprintf(err, errlen, "signals: %s", strerror(-r));
		return r;
	}
	if ((r = ring_create(AT_FDCWD, CTL_CONSOLE_NAME, ring_size, &sh.ring))) {
		snprintf(err, errlen, "console ring: %s", strerror(-r));
		return r;
	}
	/* A unikernel shell is made for a CPL3 unikernel, the common case;
	 * reshape() makes it again for a CPL0 one. A Linux shell gets the
	 * irqchip and its vCPUs: configure_built keeps them. */
	if ((r = shell_make_vm(false, err, errlen)))
		return r;
	/* Bound now, listening only once configured: a shell's socket refuses
	 * connections, which is how a restarted wispd tells shells from VMs. */
	struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = CTL_SOCK_NAME};
	sh.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(CTL_SOCK_NAME);
	if (sh.listen_fd < 0 || bind(sh.listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    prepare_control() < 0) {
		r = -errno;
		snprintf(err, errlen, "control socket: %s", strerror(errno));
		return r;
	}
	/* Images above IMAGE_BUF_SIZE are malloc'd: glibc maps allocations that
	 * large and unmaps them on free, so they leave nothing resident. Only
	 * the first SCRATCH_WARM bytes are pre-faulted, which also keeps the
	 * unmap before the guest starts cheap. */
	sh.scratch = mmap(NULL, SCRATCH_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	if (sh.scratch == MAP_FAILED) {
		sh.scratch = NULL;
		snprintf(err, errlen, "scratch buffer: %s", strerror(errno));
		return -ENOMEM;
	}
	for (size_t off = 0; off < SCRATCH_WARM; off += 4096)
		sh.scratch[off] = 0;
	/* The seccomp programs are built now, off the create's path; they go
	 * on before the guest runs (confine). */
	if (sh.seccomp && (r = sec_seccomp_prepare(err, errlen)))
		return r;
	/* The warm-up runs unikernel code; a Linux boot starts from reset. */
	return sh.shape.linux_guest ? 0 : warm_up(err, errlen);
}

/* Route readiness of fd to this thread as the kick signal, once O_ASYNC is
 * set on it (enable_async). */
static int route_signal(int fd)
{
	struct f_owner_ex o = {.type = F_OWNER_TID, .pid = gettid()};
	if (fcntl(fd, F_SETOWN_EX, &o) < 0 || fcntl(fd, F_SETSIG, VCPU_KICK_SIGNAL) < 0)
		return -errno;
	return 0;
}

static int enable_async(int fd)
{
	return fcntl(fd, F_SETFL, O_ASYNC | O_NONBLOCK) < 0 ? -errno : 0;
}

/* The control channel, made ready before any request: an epoll set over
 * the listening socket and the connection (the VM's ctl_fd), and the
 * signal routing. Configuring then only switches it on. */
static int prepare_control(void)
{
	struct epoll_event ev = {.events = EPOLLIN};
	sh.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sh.epfd < 0 || route_signal(sh.listen_fd) < 0 || route_signal(sh.conn) < 0 ||
	    epoll_ctl(sh.epfd, EPOLL_CTL_ADD, sh.listen_fd, &ev) < 0 ||
	    epoll_ctl(sh.epfd, EPOLL_CTL_ADD, sh.conn, &ev) < 0)
		return -errno;
	return 0;
}

static void drop_conn(void)
{
	if (sh.conn < 0)
		return;
	epoll_ctl(sh.epfd, EPOLL_CTL_DEL, sh.conn, NULL);
	close(sh.conn);
	sh.conn = -1;
}

/* A (re)started wispd connected: it replaces the old connection. */
static void accept_conn(void)
{
	for (;;) {
		int c = accept4(sh.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0)
			return;
		/* Only our wispd (our uid) may take over this VM: another user's
		 * process would replace its connection and could save or migrate
		 * the VM anywhere. */
		if (sec_peer_allowed(c, (gid_t)-1, NULL)) {
			close(c);
			continue;
		}
		drop_conn();
		struct epoll_event ev = {.events = EPOLLIN};
		if (route_signal(c) < 0 || enable_async(c) < 0 ||
		    epoll_ctl(sh.epfd, EPOLL_CTL_ADD, c, &ev) < 0) {
			close(c);
			continue;
		}
		sh.conn = c;
	}
}

static void *closer(void *arg)
{
	sec_seccomp_thread(SEC_THREAD_OTHER); /* takes SIGSYS */
	close((int)(intptr_t)arg);
	return NULL;
}

/* Close fd (the snapshot a save replaced) off the vCPU thread: freeing its
 * pages takes ~1 ms per 8 MiB, which the guest need not wait for. */
static void close_later(int fd)
{
	if (fd < 0)
		return;
	pthread_t t;
	pthread_attr_t a;
	sigset_t all, old;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 64 << 10);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&t, &a, closer, (void *)(intptr_t)fd))
		close(fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
}

/* CTL_SAVE, on the vCPU thread between two KVM_RUNs: the guest is not
 * running, so its state is consistent once the exit it may be in (a POLL
 * hypercall) is completed. */
static void do_save(const struct ctl_file *m, int fd)
{
	char path[CTL_PATH_MAX], err[WISP_ERRLEN];
	memcpy(path, m->path, sizeof(path));
	path[sizeof(path) - 1] = 0;
	if (sh.migrating) {
		send_failed(-EBUSY, "a migration is running");
		return;
	}
	/* Every vCPU at an instruction boundary: the others park (a paused VM's
	 * already are), this one completes its own exit. */
	struct vcpu *self = &sh.vm.vcpus[0];
	int r = sh.paused ? 0 : vm_pause(&sh.vm, self);
	if (r) {
		send_failed(-ESRCH, "the VM is stopping");
		return;
	}
	r = vcpu_complete_io(self);
	struct snap_times t;
	int old = -1;
	const char *rec = sh.built ? sh.record : vmm_config;
	size_t rec_len = sh.built ? sh.record_len : sizeof(vmm_config);
	/* wispd opened the file for us (a jailed VMM sees no path), or names it. */
	if (!r && fd >= 0)
		r = snap_save_fd(&sh.vm, fd, path, rec, rec_len, &t, err, sizeof(err));
	else if (!r)
		r = snap_save_file(&sh.vm, path, rec, rec_len, &t, &old, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "cannot complete the vCPU's exit: %s", strerror(-r));
	if (!sh.paused)
		vm_unpause(&sh.vm);
	if (r) {
		send_failed(r, "%s", err);
		return;
	}
	struct ctl_info in;
	fill_info(&in, CTL_INFO);
	in.op_total_ns = t.total;
	in.op_state_ns = t.state;
	in.op_memory_ns = t.memory;
	in.op_sync_ns = t.sync;
	in.op_bytes = t.mem_bytes;
	send_msg(&in, sizeof(in));
	close_later(old);
}

static void mig_progress(void *opaque, const struct mig_progress *p)
{
	(void)opaque;
	struct ctl_info in;
	fill_info(&in, CTL_PROGRESS);
	in.mig_state = CTL_MIG_RUNNING;
	in.mig_round = p->round;
	in.mig_bytes = p->bytes;
	in.mig_dirty_rate = p->dirty_rate;
	in.mig_total_ns = p->elapsed_ns;
	send_msg(&in, sizeof(in));
}

/* The migration thread: rounds while the vCPU runs on, then stop and copy.
 * Success stops the VM here (it runs on the target); failure leaves it
 * running and says why. */
static void *mig_main(void *arg)
{
	(void)arg;
	sec_seccomp_thread(SEC_THREAD_MIGRATE);
	char err[WISP_ERRLEN];
	struct mig_result res;
	char target[300];
	snprintf(target, sizeof(target), strchr(sh.mig_to.host, ':') ? "[%s]:%s" : "%s:%s",
		 sh.mig_to.host, sh.mig_to.port);
	int r = mig_send(&sh.vm, NULL, sh.mig_chan, target, sh.built ? sh.record : vmm_config,
			 sh.built ? sh.record_len : sizeof(vmm_config), mig_progress, NULL, &res,
			 err, sizeof(err));
	close(sh.mig_chan); /* the transport ends with its channel */
	sh.mig_chan = -1;
	struct ctl_info in;
	fill_info(&in, CTL_PROGRESS);
	in.mig_state = r ? CTL_MIG_FAILED : CTL_MIG_DONE;
	in.mig_round = res.rounds;
	in.mig_bytes = res.bytes;
	in.mig_total_ns = res.total_ns;
	in.mig_downtime_ns = res.downtime_ns;
	if (r)
		snprintf(in.reason, sizeof(in.reason), "%s", err);
	send_msg(&in, sizeof(in));
	if (!r) {
		snprintf(sh.migrated_to, sizeof(sh.migrated_to), "%s:%s", sh.mig_to.host,
			 sh.mig_to.port);
		vm_request_stop(&sh.vm, VM_STOP_MIGRATED);
		vm_unpause(&sh.vm); /* the vCPU leaves its park and sees the stop */
	}
	atomic_store(&sh.migrating, false);
	return NULL;
}

/* chan: the migration's transport, from wispd (the caller closes it: a
 * copy is kept). */
static void do_migrate(const struct ctl_target *m, int chan)
{
	if (chan < 0) {
		send_failed(-EINVAL, "a migration needs its transport (from wispd)");
		return;
	}
	if (sh.migrating) {
		send_failed(-EBUSY, "a migration is already running");
		return;
	}
	if (sh.paused) {
		send_failed(-EBUSY, "the VM is paused: resume it first");
		return;
	}
	if (sh.migrated_to[0] || atomic_load(&sh.vm.stop)) {
		send_failed(-ESRCH, "the VM is stopping");
		return;
	}
	sh.mig_chan = fcntl(chan, F_DUPFD_CLOEXEC, 3);
	if (sh.mig_chan < 0) {
		send_failed(-errno, "the migration's transport: %s", strerror(errno));
		return;
	}
	sh.mig_to = *m;
	sh.mig_to.host[sizeof(sh.mig_to.host) - 1] = 0;
	sh.mig_to.port[sizeof(sh.mig_to.port) - 1] = 0;
	if (sh.mig_thread)
		pthread_join(sh.mig_thread, NULL);
	sh.mig_thread = 0;
	atomic_store(&sh.migrating, true);
	/* The thread takes no signals: the kick belongs to the vCPU. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&sh.mig_thread, NULL, mig_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		atomic_store(&sh.migrating, false);
		sh.mig_thread = 0;
		close(sh.mig_chan);
		sh.mig_chan = -1;
		send_failed(-r, "cannot start the migration thread: %s", strerror(r));
		return;
	}
	send_info(CTL_INFO);
}

/* One command from wispd while the VM exists. */
static void handle_cmd(uint32_t type, const void *msg, size_t len, int fd)
{
	switch (type) {
	case CTL_SAVE:
		if (len == sizeof(struct ctl_file))
			do_save(msg, fd);
		else
			send_failed(-EINVAL, "malformed save message");
		break;
	case CTL_MIGRATE:
		if (len == sizeof(struct ctl_target))
			do_migrate(msg, fd);
		else
			send_failed(-EINVAL, "malformed migrate message");
		break;
	case CTL_PAUSE:
		if (sh.migrating) {
			send_failed(-EBUSY, "a migration is running");
			break;
		}
		/* vCPU 0 serves this and stays in serve() while paused; the
		 * others park. */
		if (!sh.paused && vm_pause(&sh.vm, &sh.vm.vcpus[0])) {
			send_failed(-ESRCH, "the VM is stopping");
			break;
		}
		sh.paused = true;
		sh.me.state = CTL_STATE_PAUSED;
		send_info(CTL_INFO);
		break;
	case CTL_RESUME:
		if (sh.paused)
			vm_unpause(&sh.vm);
		sh.paused = false;
		sh.me.state = CTL_STATE_RUNNING;
		send_info(CTL_INFO);
		break;
	case CTL_QUERY:
		send_info(CTL_INFO);
		break;
	case CTL_DESTROY:
		/* The kernel tears the VM down as the process exits. */
		_exit(0);
	default:
		send_failed(-EINVAL, "unexpected message %u for a configured VM", type);
		break;
	}
}

/* One message from wispd while the VM exists (n bytes at m, aligned for
 * any of them); shorter than a command, it is not one: ignored. */
static void serve_message(const void *m, size_t n, int fd)
{
	uint32_t type;
	if (n < sizeof(struct ctl_cmd))
		return;
	memcpy(&type, m, sizeof(type));
	handle_cmd(type, m, n, fd);
}

/* vm->ctl_serve: called on the vCPU thread between KVM_RUNs. Serves every
 * waiting message; while paused, stays here until resumed. */
static void serve(struct vm *vm)
{
	for (;;) {
		accept_conn();
		while (sh.conn >= 0) {
			/* Static, not on the stack: the stack stays resident for
			 * the VM's life, and paths make these messages 1 KiB. */
			static union {
				struct ctl_cmd cmd;
				struct ctl_file file;
				struct ctl_target target;
			} m;
			int fd = -1;
			ssize_t n = ctl_recv(sh.conn, &m, sizeof(m), &fd);
			if (fd >= 0 && (n < (ssize_t)sizeof(m.cmd) ||
					(m.cmd.type != CTL_SAVE && m.cmd.type != CTL_MIGRATE))) {
				close(fd); /* only a save and a migration take a file */
				fd = -1;
			}
			if (n == -EAGAIN)
				break;
			if (n == -EMSGSIZE)
				continue; /* not a command: ignore it */
			if (n <= 0) {	  /* wispd went away */
				drop_conn();
				break;
			}
			serve_message(&m, (size_t)n, fd);
			if (fd >= 0)
				close(fd);
		}
		if (!sh.paused || atomic_load(&vm->stop))
			return;
		/* Paused: sleep until wispd says something (a SIGTERM ends it too). */
		struct pollfd p = {.fd = sh.epfd, .events = POLLIN};
		poll(&p, 1, -1);
	}
}

static void on_stop_signal(int sig)
{
	if (!sh.configured)
		_exit(0); /* a shell has nothing to save */
	if (atomic_load(&sh.vm.stop) == VM_RUNNING)
		sh.vm.stop_signal = sig;
	vm_request_stop(&sh.vm, VM_STOP_SIGNAL);
}

/* Read the whole image from fd (at most max bytes). */
static int read_image(int fd, uint64_t max, uint8_t **buf, size_t *size, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		return -EINVAL;
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "file is empty");
		return -ENOEXEC;
	}
	if ((uint64_t)st.st_size > max) {
		snprintf(err, errlen, "image of %llu KiB does not fit in %llu KiB of memory",
			 (unsigned long long)st.st_size >> 10, (unsigned long long)max >> 10);
		return -E2BIG;
	}
	size_t n = (size_t)st.st_size, done = 0;
	uint8_t *b = n <= IMAGE_BUF_SIZE ? IMAGE_BUF : malloc(n);
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (done < n) {
		ssize_t k = pread(fd, b + done, n - done, (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			int e = k < 0 ? errno : EIO;
			if (b != IMAGE_BUF)
				free(b);
			snprintf(err, errlen, "read: %s", strerror(e));
			return -e;
		}
		done += (size_t)k;
	}
	*buf = b;
	*size = n;
	return 0;
}

/* A restore: this shell becomes the snapshot's VM. Its memory becomes a
 * private mapping of the snapshot's memory section (the shell's own pages
 * go), its vCPU takes the saved state. */
static int configure_restore(struct ctl_config *c, int fd, char *err, size_t errlen)
{
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -errno;
	}
	struct snap_file f;
	struct snap_times t = {0};
	int r = snap_open_fd(dfd, &f, err, errlen);
	if (!r && (f.img.nr_devices || (f.img.vm.flags & SNAP_VM_IRQCHIP))) {
		snprintf(err, errlen,
			 "snapshot of a VM with devices or an interrupt controller and no "
			 "configuration record (made by an older wisp run): restore it with "
			 "'wisp run --restore'");
		r = -EOPNOTSUPP;
	}
	if (!r && f.img.nr_vcpus != 1) {
		snprintf(err, errlen, "snapshot has %d vCPUs; daemon VMs have 1", f.img.nr_vcpus);
		r = -EOPNOTSUPP;
	}
	if (!r && f.hdr.mem_size != sh.me.mem) {
		snprintf(err, errlen, "snapshot has %llu MiB of memory, this VMM %llu MiB",
			 (unsigned long long)(f.hdr.mem_size >> 20),
			 (unsigned long long)(sh.me.mem >> 20));
		r = -EINVAL;
	}
	/* A unikernel saved without the in-kernel LAPIC runs at CPL0 (or was
	 * saved by a daemon before shells had one): the VM is made so. */
	if (!r)
		r = reshape(!(f.img.vm.flags & SNAP_VM_SPLIT_IRQCHIP), err, errlen);
	if (!r)
		r = snap_restore_file(&sh.vm, &f, c->flags & CTL_FLAG_VERIFY, &t, err, errlen);
	snap_close(&f);
	if (r)
		return r;
	sh.me.op_total_ns = t.total;
	sh.me.op_state_ns = t.state;
	sh.me.op_memory_ns = t.memory;
	memcpy(sh.me.name, c->name, sizeof(sh.me.name));
	sh.me.name[sizeof(sh.me.name) - 1] = 0;
	sh.me.flags = c->flags & CTL_FLAG_FROM_POOL;
	sh.me.created_wall_ns = c->created_wall_ns;
	sh.me.request_ns = c->request_ns;
	return 0;
}

/* Who the VM is, from its configuration message. */
static void take_identity(const struct ctl_config *c)
{
	memcpy(sh.me.name, c->name, sizeof(sh.me.name));
	sh.me.name[sizeof(sh.me.name) - 1] = 0;
	sh.me.flags = c->flags & CTL_FLAG_FROM_POOL;
	sh.me.created_wall_ns = c->created_wall_ns;
	sh.me.request_ns = c->request_ns;
}

/* The CONFIG record of this VM's snapshots and migrations: its
 * configuration with each disk's size (docs/snapshot.md), made now, while
 * the VMM can still look at its disks. */
static int make_record(bool sized, char *err, size_t errlen)
{
	struct vm_config c;
	char *json = NULL;
	if (!vm_config_copy(&c, &sh.cfg)) {
		free(c.name); /* a restored VM gets the name its restore gives it */
		c.name = NULL;
		int r = sized ? 0 : vm_config_record_sizes(&c);
		if (r) {
			vm_config_free(&c);
			snprintf(err, errlen, "disk: %s", strerror(-r));
			return r;
		}
		json = vm_config_to_json(&c);
		vm_config_free(&c);
	}
	size_t n = json ? strlen(json) + 1 : 0;
	sh.record = json ? malloc(sizeof(SNAP_CONFIG_TAG) + n) : NULL;
	if (sh.record) {
		memcpy(sh.record, SNAP_CONFIG_TAG, sizeof(SNAP_CONFIG_TAG));
		memcpy(sh.record + sizeof(SNAP_CONFIG_TAG), json, n);
		sh.record_len = sizeof(SNAP_CONFIG_TAG) + n;
	}
	free(json);
	if (!sh.record) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* A VM made from its configuration (a Linux guest, devices, several
 * vCPUs) by the one builder. A Linux shell of the configuration's shape
 * (a Linux pool class: memory, vCPUs) already has the builder's first step
 * done and keeps it; otherwise the prepared VM is dropped and the builder
 * makes this one, with the same KVM handle, memory size and console ring. The files it names are opened here, by wispd's user.
 * A restore (snap_fd >= 0) builds the same VM from the snapshot's recorded
 * configuration, with the host sides the request gave (wispd checked and
 * merged them), and loads the saved state instead of booting. */
static int configure_built(struct ctl_config *c, int snap_fd, char *err, size_t errlen)
{
	char why[WISP_ERRLEN - 32];
	c->cmdline[sizeof(c->cmdline) - 1] = 0;
	int r = vm_config_from_json(c->cmdline, strlen(c->cmdline), NULL, &sh.cfg, why,
				    sizeof(why));
	if (r) {
		snprintf(err, errlen, "configuration: %s", why);
		return r;
	}
	if (sh.cfg.mem != sh.me.mem) {
		snprintf(err, errlen, "configuration asks for %llu MiB, this VMM has %llu MiB",
			 (unsigned long long)(sh.cfg.mem >> 20),
			 (unsigned long long)(sh.me.mem >> 20));
		return -EINVAL;
	}
	struct snap_file f = {.fd = -1};
	struct snap_times t = {0};
	bool restore = snap_fd >= 0;
	if (restore) {
		int dfd = fcntl(snap_fd, F_DUPFD_CLOEXEC, 0);
		if (dfd < 0) {
			snprintf(err, errlen, "%s", strerror(errno));
			return -errno;
		}
		if ((r = snap_open_fd(dfd, &f, err, errlen)))
			goto out;
		if (f.hdr.mem_size != sh.cfg.mem || f.img.nr_vcpus != sh.cfg.cpus) {
			snprintf(err, errlen, "the snapshot's state is not of this configuration");
			r = -EINVAL;
			goto out;
		}
	}
	struct vm_build b = {.cfg = &sh.cfg,
			     .restore = restore,
			     .restore_cpl0 = restore && !(f.img.vm.flags & SNAP_VM_SPLIT_IRQCHIP),
			     .console_in = -1,
			     .console_ring = &sh.ring};
	r = make_record(false, err, errlen);
	if (!r)
		r = vm_build_check(&b, err, errlen);
	/* A Linux shell of this shape keeps its VM (memory, irqchip,
	 * vCPUs) and only gains the devices; any other is made again. */
	struct vm_shape want;
	if (!r)
		vm_shape_of(&b, &want);
	if (!r && sh.shape.linux_guest && vm_shape_equal(&sh.shape, &want)) {
		r = vm_build_devices(&b, &sh.vm, err, errlen);
	} else if (!r) {
		vm_destroy(&sh.vm);
		r = vm_build_create(&b, &sh.kvm, &sh.vm, err, errlen);
	}
	if (!r && restore)
		r = snap_restore_file(&sh.vm, &f, c->flags & CTL_FLAG_VERIFY, &t, err, errlen);
	else if (!r)
		r = vm_build_boot(&b, &sh.vm, err, errlen);
	sh.serial = b.serial;
	vm_build_free(&b);
	if (r)
		goto out;
	sh.built = true;
	sh.me.op_total_ns = t.total;
	sh.me.op_state_ns = t.state;
	sh.me.op_memory_ns = t.memory;
	take_identity(c);
out:
	if (restore)
		snap_close(&f);
	return r;
}

/* Apply the final configuration: load the image and aim the vCPU at it. */
static int configure(struct ctl_config *c, int image_fd, char *err, size_t errlen)
{
	if (c->flags & CTL_FLAG_VMCONFIG)
		return configure_built(c, c->flags & CTL_FLAG_RESTORE ? image_fd : -1, err, errlen);
	if (sh.shape.linux_guest) {
		snprintf(err, errlen, "a Linux shell takes a VM configuration, not an image");
		return -EINVAL;
	}
	if (c->flags & CTL_FLAG_RESTORE)
		return configure_restore(c, image_fd, err, errlen);
	uint8_t *img = NULL;
	size_t size = 0;
	int r = read_image(image_fd, sh.me.mem, &img, &size, err, errlen);
	if (r)
		return r;
	/* The interrupt set-up wisp run would give this image (a bad ELF is
	 * reported by the boot below). */
	struct elf_image ei;
	char why[8];
	if (!elf_parse(img, size, &ei, why, sizeof(why)) && ei.has_wisp_note)
		r = reshape(ei.wisp.flags & WISP_NOTE_CPL0, err, errlen);
	c->cmdline[sizeof(c->cmdline) - 1] = 0;
	if (!r)
		r = x86_boot_unikernel(&sh.vm, img, size, c->cmdline, err, errlen);
	if (img != IMAGE_BUF)
		free(img);
	/* Later exits need not copy the registers into kvm_run (see warm_up). */
	if (sh.vm.nr_vcpus)
		sh.vm.vcpus[0].run->kvm_valid_regs = 0;
	if (r)
		return r;
	memcpy(sh.me.name, c->name, sizeof(sh.me.name));
	sh.me.name[sizeof(sh.me.name) - 1] = 0;
	sh.me.flags = c->flags & CTL_FLAG_FROM_POOL;
	sh.me.created_wall_ns = c->created_wall_ns;
	sh.me.request_ns = c->request_ns;
	return 0;
}

/* From now on wispd can reach us on ctl.sock, and messages kick the vCPU. */
static int open_control(char *err, size_t errlen)
{
	if (listen(sh.listen_fd, 8) < 0 || enable_async(sh.listen_fd) < 0 ||
	    (sh.conn >= 0 && enable_async(sh.conn) < 0)) {
		snprintf(err, errlen, "control channel: %s", strerror(errno));
		return -errno;
	}
	sh.vm.ctl_fd = sh.epfd;
	sh.vm.ctl_serve = serve;
	return 0;
}

/* What is wrong with a configuration message (n bytes), or NULL. wispd
 * checked all of it; the VMM checks again what it relies on. */
static const char *config_invalid(const struct ctl_config *c, size_t n, int fd)
{
	if (n != sizeof(*c))
		return "bad configuration message";
	if (fd < 0)
		return "bad configuration message: no file";
	if (c->flags &
	    ~(CTL_FLAG_FROM_POOL | CTL_FLAG_RESTORE | CTL_FLAG_VERIFY | CTL_FLAG_VMCONFIG))
		return "bad configuration message: unknown flags";
	if (!memchr(c->name, 0, sizeof(c->name)) || (c->name[0] && !ctl_valid_name(c->name)))
		return "bad configuration message: malformed name";
	if (!memchr(c->cmdline, 0, sizeof(c->cmdline)))
		return "bad configuration message: command line not terminated";
	return NULL;
}

/* One message (n bytes at m) from wispd while the shell waits for its
 * configuration; fd is the file that came with it, or -1 (it is closed
 * here). 1: configured; 0: go (wispd said so, or configuring failed and the
 * guest memory may be written: never reuse); -1: keep waiting. */
static int config_message(void *m, size_t n, int fd)
{
	struct ctl_cmd cmd;
	if (n < sizeof(cmd)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	memcpy(&cmd, m, sizeof(cmd));
	if (cmd.type == CTL_DESTROY) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (cmd.type == CTL_QUERY) {
		if (fd >= 0)
			close(fd);
		send_info(CTL_INFO);
		return -1;
	}
	const char *bad =
		cmd.type == CTL_CONFIG ? config_invalid(m, n, fd) : "bad configuration message";
	if (bad) {
		if (fd >= 0)
			close(fd);
		send_failed(-EINVAL, "%s", bad);
		return -1;
	}
	char err[WISP_ERRLEN];
	int r = configure(m, fd, err, sizeof(err));
	close(fd);
	if (r) {
		send_failed(r, "%s", err);
		return 0;
	}
	return 1;
}

/* Wait for CTL_CONFIG; false when wispd went away (or told us to go). */
static bool wait_config(void)
{
	_Static_assert(sizeof(struct ctl_config) <= CTL_MSG_MAX, "configuration too large");
	for (;;) {
		union msg {
			struct ctl_config cfg;
			struct ctl_cmd cmd;
		} *m = (union msg *)sh.scratch;
		int fd = -1;
		ssize_t n = ctl_recv(sh.conn, m, CTL_MSG_MAX, &fd);
		if (n == -EMSGSIZE)
			continue;
		if (n <= 0)
			return false;
		int r = config_message(m, (size_t)n, fd);
		if (r >= 0)
			return r;
	}
}

/* Write the status file: how the VM ended, for a wispd that was away. */
static void write_status(const struct ctl_info *in)
{
	int fd = sh.status_fd >= 0 ? sh.status_fd
				   : open(CTL_STATUS_NAME ".tmp",
					  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char reason[2 * CTL_REASON_MAX], *o = reason;
	for (const char *p = in->reason; *p && o < reason + sizeof(reason) - 8; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '"' || ch == '\\')
			o += sprintf(o, "\\%c", ch);
		else if (ch < 0x20)
			o += sprintf(o, "\\u%04x", ch);
		else
			*o++ = (char)ch;
	}
	*o = 0;
	const struct exit_stats *s = &in->exits;
	dprintf(fd,
		"{\"id\": \"%s\", \"name\": \"%s\", \"state\": \"%s\", \"exit_status\": %d, "
		"\"reason\": \"%s\", \"mem\": %llu, \"created_wall_ns\": %llu, "
		"\"from_pool\": %s, \"first_hypercall_ns\": %llu, \"request_ns\": %llu, "
		"\"started_ns\": %llu, \"exits\": {\"io\": %llu, \"mmio\": %llu, \"hypercall\": "
		"%llu, \"hlt\": %llu, \"intr\": %llu, \"shutdown\": %llu, \"unhandled\": %llu, "
		"\"other\": %llu}}\n",
		in->id, in->name, ctl_state_name(in->state), in->exit_status, reason,
		(unsigned long long)in->mem, (unsigned long long)in->created_wall_ns,
		in->flags & CTL_FLAG_FROM_POOL ? "true" : "false",
		(unsigned long long)in->first_hypercall_ns, (unsigned long long)in->request_ns,
		(unsigned long long)in->started_ns, (unsigned long long)s->io,
		(unsigned long long)s->mmio, (unsigned long long)s->hypercall,
		(unsigned long long)s->hlt, (unsigned long long)s->intr,
		(unsigned long long)s->shutdown, (unsigned long long)s->unhandled,
		(unsigned long long)s->other);
	close(fd);
	if (fd != sh.status_fd)
		rename(CTL_STATUS_NAME ".tmp", CTL_STATUS_NAME);
}

/* Enter the jail (--jail-uid), if any, now that everything the VM needs is
 * open: the status file is opened first, as the jail hides its directory
 * (written in place at the end: empty until then, which a restarted wispd
 * reads as "no status"). */
static int enter_jail(char *err, size_t errlen)
{
	if (!sh.jailed || sh.status_fd >= 0)
		return 0; /* no jail, or already in it */
	sh.status_fd =
		open(CTL_STATUS_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (sh.status_fd < 0) {
		snprintf(err, errlen, "status file: %s", strerror(errno));
		return -errno;
	}
	return jail_enter(&sh.jail, err, errlen);
}

/* The guest stopped: record and report how. */
static void report_end(void)
{
	struct ctl_info in;
	fill_info(&in, CTL_EXIT);
	switch (atomic_load(&sh.vm.stop)) {
	case VM_STOP_MIGRATED:
		in.state = CTL_STATE_EXITED;
		in.exit_status = 0;
		snprintf(in.reason, sizeof(in.reason), "migrated to %.200s", sh.migrated_to);
		break;
	case VM_STOP_EXIT:
		in.state = CTL_STATE_EXITED;
		in.exit_status = sh.vm.exit_status;
		snprintf(in.reason, sizeof(in.reason), "guest exited with status %d",
			 sh.vm.exit_status);
		break;
	case VM_STOP_RESET: /* how a Linux guest powers off */
		in.state = CTL_STATE_EXITED;
		in.exit_status = 0;
		snprintf(in.reason, sizeof(in.reason), "guest rebooted (its power-off)");
		break;
	case VM_STOP_SIGNAL:
		in.state = CTL_STATE_EXITED;
		in.exit_status = WISP_EXIT_SIGNAL + sh.vm.stop_signal;
		snprintf(in.reason, sizeof(in.reason), "VMM stopped by signal %s",
			 sigabbrev_np(sh.vm.stop_signal));
		break;
	default:
		in.state = CTL_STATE_CRASHED;
		in.exit_status = WISP_EXIT_CRASH;
		snprintf(in.reason, sizeof(in.reason), "%s",
			 sh.vm.crash[0] ? sh.vm.crash : "unknown failure");
		break;
	}
	write_status(&in);
	send_msg(&in, sizeof(in));
}

/* The seccomp trap's report (async-signal-safe): wispd learns that the VM
 * crashed and why before the process ends. */
static void on_seccomp_trap(const char *line, size_t len)
{
	struct ctl_info in;
	fill_info(&in, CTL_EXIT);
	in.state = CTL_STATE_CRASHED;
	in.exit_status = WISP_EXIT_SECCOMP;
	if (len >= sizeof(in.reason))
		len = sizeof(in.reason) - 1;
	memcpy(in.reason, line, len);
	in.reason[len] = 0;
	if (sh.conn >= 0)
		send(sh.conn, &in, sizeof(in), MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The last step before the guest runs: every thread goes under its seccomp
 * filter (security.h). False (wispd told why) if they cannot. */
static bool confine(void)
{
	char err[WISP_ERRLEN];
	sec_seccomp_set_report(on_seccomp_trap);
	if (!sec_seccomp_start(sh.seccomp, sh.me.name, err, sizeof(err)))
		return true;
	send_failed(-EPERM, "%s", err);
	return false;
}

/* The VM could not come to life here: say why, for wispd and its status
 * file, and exit. */
static int receive_failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int receive_failed(const char *fmt, ...)
{
	struct ctl_info in;
	fill_info(&in, CTL_EXIT);
	in.state = CTL_STATE_CRASHED;
	in.exit_status = WISP_EXIT_CRASH;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in.reason, sizeof(in.reason), fmt, ap);
	va_end(ap);
	write_status(&in);
	send_msg(&in, sizeof(in));
	return 1;
}

/* A receiver's configuration: what the receive request said, sent by wispd
 * as a CTL_CONFIG before any source connects (always: with
 * CTL_FLAG_VMCONFIG for a VM built from a configuration, a Linux guest,
 * devices, several vCPUs: its kind, vCPUs and the host side of each
 * device). Such a VM is built from it (devices included, their backends
 * opened here) for the request's memory size before any peer is taken; the
 * source's configuration, in the state, is then checked against it and
 * gives the guest's side. */
static struct {
	bool got;   /* wispd's CTL_CONFIG arrived */
	bool bad;   /* ... and could not be taken: why */
	bool built; /* ... and asks for a VM built from a configuration */
	char why[WISP_ERRLEN];
	struct vm_config given;
	struct vm_build b;
	struct vm_config cfg0; /* what was built: given, with the request's size */
} rcv;

/* The receive request's configuration: {"kind", "cpus", "devices"}. */
static int receive_take_config(struct ctl_config *c, char *err, size_t errlen)
{
	c->cmdline[sizeof(c->cmdline) - 1] = 0;
	json_error_t je;
	json_t *o = json_loads(c->cmdline, 0, &je), *devs = json_object_get(o, "devices");
	const char *kind = json_string_value(json_object_get(o, "kind"));
	json_int_t cpus = json_integer_value(json_object_get(o, "cpus"));
	char why[WISP_ERRLEN - 32];
	int r = -EINVAL;
	vm_config_free(&rcv.given);
	if (!o || !kind || cpus < 1 || cpus > WISP_MAX_VCPUS)
		snprintf(err, errlen, "bad receive configuration");
	else if (devs && (r = vm_config_devices_from_jobj(devs, &rcv.given, why, sizeof(why))))
		snprintf(err, errlen, "receive configuration: %s", why);
	else if (!devs && (vm_config_init(&rcv.given), false))
		;
	else if ((r = vm_config_record_sizes(&rcv.given)))
		snprintf(err, errlen, "receive configuration: disk: %s", strerror(-r));
	if (!r) {
		rcv.given.kind = strcmp(kind, "linux") ? VM_KIND_UNIKERNEL : VM_KIND_LINUX;
		rcv.given.cpus = (int)cpus;
	}
	json_decref(o); /* kind points into it */
	if (r)
		return r;
	rcv.built = true;
	return 0;
}

/* Build the VM the request described, for mem bytes: its memory is where
 * the source's pages land. The prepared shell's VM is dropped. */
static int receive_build(uint64_t mem, char *err, size_t errlen)
{
	rcv.cfg0 = rcv.given;
	rcv.cfg0.mem = mem;
	rcv.b = (struct vm_build){
		.cfg = &rcv.cfg0, .restore = true, .console_in = -1, .console_ring = &sh.ring};
	int r = vm_build_check(&rcv.b, err, errlen);
	if (!r) {
		vm_destroy(&sh.vm);
		r = vm_build_create(&rcv.b, &sh.kvm, &sh.vm, err, errlen);
	}
	sh.serial = rcv.b.serial;
	return r;
}

/* The source's configuration against the request's (the same kinds in the
 * same order, disks of the same size and mode), one line per mismatch
 * joined by "; "; the devices take its guest side (MAC, CID). */
static int receive_attach(void *opaque, const struct snap_image *img, char *err, size_t errlen)
{
	(void)opaque;
	struct vm_config rec;
	char lines[4 * WISP_ERRLEN];
	int r = snap_config_of(img, sh.vm.mem.size, &rec, lines, sizeof(lines));
	if (r) {
		snprintf(err, errlen, "the source's VM: %.200s", lines);
		return r;
	}
	int bad = rec.kind != rcv.given.kind || rec.cpus != rcv.given.cpus;
	if (bad)
		snprintf(lines, sizeof(lines),
			 "the source's VM is a %s with %d vCPUs, the receive "
			 "request said a %s with %d",
			 rec.kind == VM_KIND_LINUX ? "Linux guest" : "unikernel", rec.cpus,
			 rcv.given.kind == VM_KIND_LINUX ? "Linux guest" : "unikernel",
			 rcv.given.cpus);
	for (int i = 0; !bad && i < (rec.ndev > rcv.given.ndev ? rec.ndev : rcv.given.ndev); i++) {
		if (i < rec.ndev && i < rcv.given.ndev && rec.dev[i].kind == rcv.given.dev[i].kind)
			continue;
		snprintf(lines, sizeof(lines),
			 "device %d: the source's VM has %s there, the receive request %s", i,
			 i < rec.ndev ? vm_dev_type(rec.dev[i].kind)->type : "no device",
			 i < rcv.given.ndev ? vm_dev_type(rcv.given.dev[i].kind)->type : "none");
		bad = 1;
	}
	if (!bad)
		bad = vm_config_take_host_sides(&rec, &rcv.given, lines, sizeof(lines));
	for (int i = 0; !bad && i < rec.ndev; i++) {
		const struct vm_dev_config *d = &rec.dev[i], *g = &rcv.cfg0.dev[i];
		if (d->kind == VM_DEV_BLK &&
		    (d->ro != g->ro || (d->id != NULL) != (g->id != NULL) ||
		     (d->id && strcmp(d->id, g->id)))) {
			snprintf(lines, sizeof(lines),
				 "device %d: the source's disk is %s%s%s: give it so", i,
				 d->ro ? "read-only" : "read-write", d->id ? " with id " : "",
				 d->id ? d->id : "");
			bad = 1;
		}
	}
	if (bad) {
		for (char *p = lines; (p = strchr(p, '\n'));)
			*p = ';';
		size_t n = strnlen(lines, errlen - 1); /* as much as err holds */
		memcpy(err, lines, n);
		err[n] = 0;
		vm_config_free(&rec);
		return -EINVAL;
	}
	vm_config_take_identity(&rec, &rcv.given, false);
	vm_build_set_identity(&rcv.b, &rec);
	vm_config_free(&sh.cfg);
	sh.cfg = rec;
	sh.built = true;
	return make_record(true, err, errlen);
}

/* While receiving: serve wispd's messages (its one CTL_CONFIG taken);
 * true when the VMM must end (destroy, wispd hung up, or a configuration
 * that cannot be taken: rcv.bad). */
static bool serve_receiving(void *opaque)
{
	(void)opaque;
	static union {
		struct ctl_cmd cmd;
		struct ctl_config cfg;
	} m;
	for (;;) {
		ssize_t n = ctl_recv(sh.conn, &m, sizeof(m), NULL);
		if (n == -EAGAIN)
			return false;
		if (n == 0 || (n < 0 && n != -EMSGSIZE) ||
		    (n == (ssize_t)sizeof(m.cmd) && m.cmd.type == CTL_DESTROY))
			return true;
		if (n == (ssize_t)sizeof(m.cmd) && m.cmd.type == CTL_QUERY) {
			send_info(CTL_INFO);
		} else if (n == (ssize_t)sizeof(m.cfg) && m.cmd.type == CTL_CONFIG && !rcv.got) {
			/* no answer: wispd waits for our INFO only */
			rcv.got = true;
			if ((m.cfg.flags & CTL_FLAG_VMCONFIG) &&
			    receive_take_config(&m.cfg, rcv.why, sizeof(rcv.why))) {
				rcv.bad = true;
				return true;
			}
		} else if (n > 0) {
			send_failed(-EBUSY, "waiting for an incoming migration");
		}
	}
}

/* Wait for the transport's next message until deadline, serving wispd
 * meanwhile: 0 with *m (and a PEER's fd), 1 when the VMM must end, 2 once
 * wispd's configuration is in (only if until_config), -ETIMEDOUT, or
 * -errno when the transport is gone. */
static int next_from_transport(int chan, uint64_t deadline, bool until_config, struct mig_chan *m,
			       int *fd)
{
	for (;;) {
		if (until_config && rcv.got)
			return 2;
		uint64_t now = util_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p[2] = {{.fd = chan, .events = POLLIN},
				      {.fd = sh.conn, .events = POLLIN}};
		int n = poll(p, 2, (int)((deadline - now) / 1000000 + 1));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if (p[1].revents && serve_receiving(NULL))
			return 1;
		if (!p[0].revents)
			continue;
		int r = mig_chan_recv(chan, m, fd);
		if (r != -EAGAIN)
			return r;
	}
}

/* A peer's hello must come at once: a source sends it right after the
 * handshake. A silent peer is dropped after this (or at the deadline). */
#define HELLO_TIMEOUT_NS (10 * 1000000000ull)

/* Take one peer: its hello, then the whole stream, within the deadline.
 * 0: the VM's state is loaded (c->fd stays open for mig_resumed); 1: the
 * VMM must end (destroy); -1: the peer was refused or failed (said why,
 * memory cleared again: wait for the next); other < 0: the VM is lost. */
static int take_peer(struct mig_conn *c, uint64_t deadline, uint64_t mem, char *err, size_t errlen)
{
	uint64_t now = util_now_ns();
	c->deadline_ns = now + HELLO_TIMEOUT_NS < deadline ? now + HELLO_TIMEOUT_NS : deadline;
	struct mig_hello h;
	char why[200];
	int r = mig_read_hello(c, &h, err, errlen);
	if (r == -ECANCELED)
		return 1;
	if (r) {
		log_warn(NULL, "dropped a migration peer: %s", err);
		return -1;
	}
	if ((r = mig_check_hello(&h, rcv.built ? (uint32_t)rcv.given.cpus : 1, mem, why,
				 sizeof(why)))) {
		log_warn(NULL, "refused a migration: %s", why);
		mig_ack(c, r, why);
		return -1;
	}
	c->deadline_ns = deadline;
	mig_ack(c, 0, NULL);
	uint8_t *state = NULL;
	size_t len = 0;
	struct snap_image img;
	r = mig_rx_frames(c, sh.vm.mem.base, sh.vm.mem.size, &state, &len, err, errlen);
	if (r == -ECANCELED)
		return 1;
	if (!r && !(r = snap_parse_state(state, len, mem, &img, err, errlen))) {
		/* A VM built from a configuration: the source's must match it. */
		if (!rcv.built || !(r = receive_attach(NULL, &img, err, errlen))) {
			r = snap_load_state(&sh.vm, &img, err, errlen);
			snap_image_free(&img);
			free(state);
			return r ? (r < -1 ? r : -EIO) : 0;
		}
		snap_image_free(&img);
	}
	free(state);
	log_warn(NULL, "incoming migration failed, waiting for another: %s", err);
	mig_resumed(c, false, err);
	/* Whatever it wrote goes: the next source's memory is all there may be. */
	fallocate(sh.vm.mem.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)mem);
	return -1;
}

/* wisp-vmm --receive FD: wait for a source to migrate a VM here, through
 * the transport on channel FD (wisp-tls, started by wispd: it listens on
 * the address asked for and hands over only authenticated peers). The VM
 * is created (built from the request's configuration, if wispd sends one)
 * for the size the receive request gave (a hello that says otherwise is
 * refused); the pre-copy rounds land in its memory while the source still
 * runs. Everything, refused peers included, happens before the deadline,
 * after which the receiver gives up. */
static int receive_main(int chan, const char *id, uint64_t mem, uint64_t timeout_ms, uint64_t ring)
{
	char err[WISP_ERRLEN];
	uint64_t deadline = util_now_ns() + timeout_ms * 1000000ull;
	fcntl(sh.conn, F_SETFL, fcntl(sh.conn, F_GETFL) | O_NONBLOCK);
	sh.me.pid = (int32_t)getpid();
	struct mig_chan m;
	int fd = -1, pending = -1, r;
	bool listening = false;
	/* The transport says whether it could bind the address; wispd sends
	 * the request's configuration. */
	while (!listening || !rcv.got) {
		r = next_from_transport(chan, deadline, !rcv.got, &m, &fd);
		if (r == 2)
			continue;
		if (r == 0 && m.kind == MIG_CHAN_REFUSED) {
			log_warn(NULL, "refused a migration peer: %s", m.why);
			continue;
		}
		if (r == 0 && m.kind == MIG_CHAN_LISTENING) {
			listening = true;
			continue;
		}
		if (r == 0 && m.kind == MIG_CHAN_PEER && listening) { /* taken once set up */
			if (pending >= 0)
				close(pending);
			pending = fd;
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (pending >= 0)
			close(pending);
		if (r == 1 && rcv.bad) {
			send_failed(-EINVAL, "%s", rcv.why);
			return 1;
		}
		if (r == 1)
			return 0;
		send_failed(r	       ? r
			    : m.status ? m.status
				       : -EIO,
			    "%s", r ? "the migration transport did not start" : m.why);
		return 1;
	}
	r = prepare(id, mem, ring, err, sizeof(err));
	/* The shell's warm-up wrote a few pages: the source's memory is all
	 * that may be there. A VM built from a configuration is made anew,
	 * its devices' host sides opened now. */
	if (!r && rcv.built)
		r = receive_build(mem, err, sizeof(err));
	else if (!r && fallocate(sh.vm.mem.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
				 (off_t)mem) < 0) {
		r = -errno;
		snprintf(err, sizeof(err), "clearing guest memory: %s", strerror(errno));
	}
	/* Before the first byte of a peer arrives. */
	if (!r && (r = enter_jail(err, sizeof(err))))
		r = -EPERM;
	if (r) {
		if (pending >= 0)
			close(pending);
		send_failed(r, "%s", err);
		return 1;
	}
	sh.me.state = CTL_STATE_RECEIVING;
	send_info(CTL_INFO);
	struct mig_conn c = {.fd = -1, .watch_fd = sh.conn, .watch = serve_receiving};
	for (;;) {
		if (pending >= 0) {
			fd = pending;
			pending = -1;
			m.kind = MIG_CHAN_PEER;
			r = 0;
		} else {
			r = next_from_transport(chan, deadline, false, &m, &fd);
		}
		if (r == 1)
			return 0;
		if (r == -ETIMEDOUT)
			return receive_failed("no migration arrived within %llu s",
					      (unsigned long long)(timeout_ms / 1000));
		if (r)
			return receive_failed("the migration transport ended: %s", strerror(-r));
		if (m.kind == MIG_CHAN_REFUSED) {
			log_warn(NULL, "refused a migration peer: %s", m.why);
			continue;
		}
		if (m.kind == MIG_CHAN_FAILED)
			return receive_failed("incoming migration failed: %s", m.why);
		if (m.kind != MIG_CHAN_PEER)
			continue;
		c.fd = fd;
		r = take_peer(&c, deadline, mem, err, sizeof(err));
		if (r == 0)
			break;
		if (r != -1)
			mig_resumed(&c, false, err);
		close(c.fd);
		c.fd = -1;
		if (r == 1)
			return 0;
		if (r != -1)
			return receive_failed("incoming migration failed: %s", err);
	}
	sh.configured = true;
	if (open_control(err, sizeof(err))) {
		mig_resumed(&c, false, err);
		close(c.fd);
		return receive_failed("incoming migration failed: %s", err);
	}
	sh.vm.vcpus[0].run->kvm_valid_regs = 0;
	munmap(sh.scratch, SCRATCH_SIZE);
	sh.scratch = NULL;
	if (!confine()) {
		mig_resumed(&c, false, "the target VMM cannot confine itself");
		close(c.fd);
		return receive_failed("incoming migration failed: cannot confine the VMM");
	}
	sh.me.state = CTL_STATE_RUNNING;
	sh.me.started_ns = util_now_ns();
	/* From here the VM is ours: the source stops once it reads this. */
	mig_resumed(&c, true, NULL);
	close(c.fd);
	close(chan); /* the transport relays what is left, then exits */
	send_info(CTL_STATE);
	vm_run(&sh.vm);
	report_end();
	return 0;
}

static const char usage[] = "usage: wisp-vmm --id ID --dir DIR --mem BYTES --fd FD [--ring BYTES]\n"
			    "       [--cpus N] [--linux] [--receive FD --receive-timeout MS]\n"
			    "       [--log-format text|json]\n"
			    "       [--seccomp on|off]\n"
			    "       [--jail-uid UID --jail-dir DIR [--cgroup DIR] [--jail-early]]\n"
			    "(started by wispd; not meant to be run by hand)\n";

int shell_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"id", required_argument, NULL, 'i'},
		{"dir", required_argument, NULL, 'd'},
		{"mem", required_argument, NULL, 'm'},
		{"fd", required_argument, NULL, 'f'},
		{"ring", required_argument, NULL, 'r'},
		{"receive", required_argument, NULL, 'R'},
		{"receive-timeout", required_argument, NULL, 'T'},
		{"log-format", required_argument, NULL, 'l'},
		{"jail-uid", required_argument, NULL, 'u'},
		{"jail-dir", required_argument, NULL, 'J'},
		{"cgroup", required_argument, NULL, 'C'},
		{"jail-early", no_argument, NULL, 'E'},
		{"seccomp", required_argument, NULL, 'S'},
		{"cpus", required_argument, NULL, 'c'},
		{"linux", no_argument, NULL, 'L'},
		{0},
	};
	const char *id = NULL, *dir = NULL;
	uint64_t mem = 0, fd = UINT64_MAX, ring = CTL_RING_DEFAULT, chan = 0, timeout = 300000,
		 juid = 0, cpus = 1;
	enum log_format log_format = LOG_FORMAT_TEXT;
	bool jail_early = false;
	int c;
	char why[WISP_ERRLEN];
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'i':
			id = optarg;
			bad = !ctl_valid_id(id);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'm':
			bad = opt_parse_uint(optarg, 0, UINT64_MAX, &mem) ||
			      vm_check_mem(mem, "--mem", optarg, why, sizeof(why));
			break;
		case 'f':
			bad = opt_parse_uint(optarg, 0, 1 << 20, &fd) != 0;
			break;
		case 'r':
			bad = opt_parse_uint(optarg, 4096, 1 << 30, &ring) != 0;
			break;
		case 'R':
			bad = opt_parse_uint(optarg, 3, 1 << 20, &chan) != 0;
			break;
		case 'T':
			bad = opt_parse_uint(optarg, 1, 86400000, &timeout) != 0;
			break;
		case 'l':
			bad = log_parse_format(optarg, &log_format) != 0;
			break;
		case 'u':
			bad = opt_parse_uint(optarg, 1, 0xfffffffe, &juid) != 0;
			sh.jail.uid = (uid_t)juid;
			sh.jail.gid = (gid_t)juid;
			sh.jailed = true;
			break;
		case 'J':
			sh.jail.dir = optarg;
			break;
		case 'C':
			sh.jail.cgroup = optarg;
			break;
		case 'E':
			jail_early = true;
			break;
		case 'S':
			bad = sec_seccomp_parse(optarg, &sh.seccomp) != 0;
			break;
		case 'c':
			bad = opt_parse_uint(optarg, 1, WISP_MAX_VCPUS, &cpus) != 0;
			break;
		case 'L':
			sh.shape.linux_guest = true;
			break;
		default:
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "wisp-vmm: bad argument '%s'\n%s", argv[optind - 1], usage);
			return 2;
		}
	}
	sh.shape.cpus = (unsigned)cpus;
	if (!id || !dir || !mem || fd == UINT64_MAX || optind != argc ||
	    sh.jailed != (sh.jail.dir != NULL) || (cpus != 1 && !sh.shape.linux_guest)) {
		fprintf(stderr, "wisp-vmm: missing arguments\n%s", usage);
		return 2;
	}
	sh.conn = (int)fd;
	snprintf(sh.me.id, sizeof(sh.me.id), "%s", id);
	log_setup("wisp-vmm", log_format);
	log_set_vm(id);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGIO, SIG_IGN); /* never expected: control readiness comes as the kick signal */
	char err[WISP_ERRLEN];
	if (chdir(dir) < 0) {
		send_failed(-errno, "runtime directory '%s': %s", dir, strerror(errno));
		return 1;
	}
	/* Still one thread: the jail's mount namespace is made now. */
	if (sh.jailed && jail_prepare(&sh.jail, err, sizeof(err))) {
		send_failed(-EPERM, "%s", err);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (chan)
		return receive_main((int)chan, id, mem, timeout, ring);
	int r = prepare(id, mem, ring, err, sizeof(err));
	if (r) {
		send_failed(r, "%s", err);
		return 1;
	}
	/* A pool shell (--jail-early) needs nothing but fds from here on: it
	 * enters its jail now, off the create's critical path (~2.5 ms). */
	if (jail_early && enter_jail(err, sizeof(err))) {
		send_failed(-EPERM, "%s", err);
		return 1;
	}
	send_info(CTL_READY);
	if (!wait_config())
		return 0;
	sh.configured = true;
	if (open_control(err, sizeof(err))) {
		send_failed(-EIO, "%s", err);
		return 1;
	}
	if (enter_jail(err, sizeof(err))) {
		send_failed(-EPERM, "%s", err);
		return 1;
	}
	sh.me.state = CTL_STATE_RUNNING;
	sh.me.started_ns = util_now_ns();
	send_info(CTL_INFO);
	munmap(sh.scratch, SCRATCH_SIZE); /* a running VM does not keep it */
	sh.scratch = NULL;
	if (!confine())
		return 1;
	vm_run(&sh.vm);
	report_end();
	return 0;
}
