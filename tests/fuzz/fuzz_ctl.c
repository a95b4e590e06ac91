/* Fuzz target: the wispd <-> VMM messages (ctl_proto.h), both directions, fed
 * to each side's handler without sockets or processes.
 *
 * wispd's side: vmm_on_message() on a scratch wispd holding a starting pool
 * shell, a ready one, a starting cold VM, a running VM and an adopted one.
 * The VMM's side: vmm_shell.c itself, compiled into this file with its
 * effects on the host replaced below (sending, saving, migrating, building
 * a VM, exiting): its config_message() while it is a shell, then its
 * serve_message() once configured; whatever it answers must pass wispd's
 * own check (ctl_check_info) and goes to wispd's side as from the cold VM.
 *
 * Input: up to 32 records of u8 head, u16 length, u16 present, then `present` bytes;
 * the message is `length` bytes (at most CTL_MSG_MAX), zero past the bytes
 * present. head bit 0: 0 to wispd (from VMM (head >> 2) % 5), 1 to the VMM
 * (bit 1: with a file attached, /dev/null). head 0xff (no message): GET
 * /stats and GET /vms, whose answers must be JSON.
 *
 * Checked: the pool's counts match its list, which has no cycle; a VM's
 * state is in range and final only as exited or crashed; every command of
 * a configured VMM is answered; GET /stats and GET /vms give JSON.
 *
 * Speed (issue 17): those answers are checked as JSON without allocating
 * (fuzz_json.h); the checks are not instrumented for coverage; log lines
 * are formatted but not written; ASan records 4 frames per allocation and
 * keeps 32 MiB of freed blocks in quarantine (see __asan_default_options). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pthread.h>

#include "arch/x86/x86.h"
#include "control/wispd.h"
#include "fuzz_json.h"
#include "security/security.h"
#include "snapshot/snapshot.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "ctl: %s (line %d)\n", #cond, __LINE__);                   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* --- the VMM's effects, replaced ------------------------------------------------- */

#define FAKE_CONN 1000 /* sh.conn: never reaches a system call here */
static int replies;    /* messages the VMM sent for the current one */
static jmp_buf vmm_exited;
static void to_wispd(const void *msg, size_t len);

static int fake_ctl_send(int sock, const void *msg, size_t len, int fd)
{
	char why[128];
	CHECK(sock == FAKE_CONN && fd < 0);
	if (ctl_check_info(msg, len, why, sizeof(why))) {
		fprintf(stderr, "ctl: the VMM sent what wispd refuses: %s\n", why);
		abort();
	}
	replies++;
	to_wispd(msg, len);
	return 0;
}

__attribute__((noreturn)) static void fake_exit(int status)
{
	(void)status;
	longjmp(vmm_exited, 1);
}

static int fake_vcpu_complete_io(struct vcpu *vcpu)
{
	(void)vcpu;
	return 0;
}

static int fake_snap_save_file(struct vm *vm, const char *path, const char *config,
			       size_t config_len, struct snap_times *t, int *old_fd, char *err,
			       size_t errlen)
{
	(void)vm, (void)config, (void)config_len;
	memset(t, 0, sizeof(*t));
	*old_fd = -1;
	if (path[0] != '/') {
		snprintf(err, errlen, "'%s': not an absolute path", path);
		return -EINVAL;
	}
	t->mem_bytes = 4096;
	return 0;
}

static int fake_snap_save_fd(struct vm *vm, int fd, const char *name, const char *config,
			     size_t config_len, struct snap_times *t, char *err, size_t errlen)
{
	(void)vm, (void)fd, (void)name, (void)config, (void)config_len, (void)err, (void)errlen;
	memset(t, 0, sizeof(*t));
	t->mem_bytes = 4096;
	return 0;
}

static int fake_mig_send(struct vm *vm, struct vcpu *self, int chan, const char *target,
			 const char *config, size_t config_len,
			 void (*progress)(void *opaque, const struct mig_progress *p), void *opaque,
			 struct mig_result *res, char *err, size_t errlen)
{
	(void)vm, (void)self, (void)chan, (void)config, (void)config_len;
	memset(res, 0, sizeof(*res));
	struct mig_progress p = {.round = 1, .bytes = 4096};
	progress(opaque, &p);
	if (strncmp(target, "target:", 7)) {
		snprintf(err, errlen, "cannot connect to %s: Connection refused", target);
		return -ECONNREFUSED;
	}
	return 0;
}

/* Threads run at once, to the end, on the caller's. */
static int fake_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *),
			       void *arg)
{
	(void)a;
	*t = (pthread_t)1;
	fn(arg);
	return 0;
}

static int fake_pthread_join(pthread_t t, void **ret)
{
	(void)t, (void)ret;
	return 0;
}

static int fake_vm_build_check(struct vm_build *b, char *err, size_t errlen)
{
	/* The files a configuration names are not opened here. */
	if (b->cfg->ndev > 2) {
		snprintf(err, errlen, "device %d: cannot open it", b->cfg->ndev - 1);
		return -ENOENT;
	}
	return 0;
}

static int fake_vm_build_create(struct vm_build *b, struct kvm *kvm, struct vm *vm, char *err,
				size_t errlen)
{
	(void)b, (void)kvm, (void)err, (void)errlen;
	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	return 0;
}

static void fake_vm_shape_of(const struct vm_build *b, struct vm_shape *shape)
{
	*shape = (struct vm_shape){.mem = b->cfg->mem,
				   .cpus = (unsigned)b->cfg->cpus,
				   .linux_guest = b->cfg->kind == VM_KIND_LINUX};
}

static int fake_vm_build_devices(struct vm_build *b, struct vm *vm, char *err, size_t errlen)
{
	(void)b, (void)vm, (void)err, (void)errlen;
	return 0;
}

static int fake_vm_build_boot(struct vm_build *b, struct vm *vm, char *err, size_t errlen)
{
	(void)b, (void)vm, (void)err, (void)errlen;
	return 0;
}

static void fake_vm_destroy(struct vm *vm)
{
	(void)vm;
}

#define ctl_send	 fake_ctl_send
#define _exit		 fake_exit
#define vcpu_complete_io fake_vcpu_complete_io
#define snap_save_file	 fake_snap_save_file
#define snap_save_fd	 fake_snap_save_fd
#define mig_send	 fake_mig_send
#define pthread_create	 fake_pthread_create
#define pthread_join	 fake_pthread_join
#define vm_build_check	 fake_vm_build_check
#define vm_build_create	 fake_vm_build_create
#define vm_build_boot	 fake_vm_build_boot
#define vm_shape_of	 fake_vm_shape_of
#define vm_build_devices fake_vm_build_devices
#define vm_destroy	 fake_vm_destroy
#include "control/vmm_shell.c"
#undef ctl_send
#undef _exit
#undef pthread_create
#undef pthread_join

/* --- the scratch wispd --------------------------------------------------------------- */

#define NR_VMMS 5
static struct wispd d;
static struct vmm *vmms[NR_VMMS]; /* NULL once buried */
static bool vmm_gone;		  /* the VMM side exited */
static int devnull = -1;

static struct vmm *add_vmm(int i, bool vm, enum ctl_state state)
{
	struct vmm *v = vmm_new();
	CHECK(v);
	/* Not snprintf: this runs for every input, and ASan intercepts
	 * snprintf (the set-up was a tenth of the time). */
	memcpy(v->id, "00000000000", 11);
	v->id[11] = (char)('0' + i);
	v->id[12] = 0;
	v->pid = (1 << 30) + i; /* above any pid_max */
	v->mem = 32u << 20;
	v->state = state;
	table_add_pid(&d, v);
	if (vm) {
		memcpy(v->name, "vm", 2);
		v->name[2] = (char)('0' + i);
		v->name[3] = 0;
		table_add_vm(&d, v);
	}
	vmms[i] = v;
	return v;
}

static void setup(void)
{
	if (!d.by_id.buckets) {
		if (hmap_init(&d.by_id, 16) || hmap_init(&d.by_name, 16) ||
		    hmap_init(&d.by_pid, 16))
			abort();
		d.run_fd = d.vms_fd = d.shells_fd = d.lock_fd = d.listen_fd = -1;
		d.epfd = d.sig_fd = d.timer_fd = -1;
		d.cfg.answer_timeout_ms = 5000;
		d.cfg.nr_classes = 1;
		d.started_ns = util_now_ns();
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		CHECK(devnull >= 0);
		log_set_fd(-1); /* every line formatted, none written: a write(2) each */
	}
	struct pool_class *c = &d.cfg.classes[0];
	*c = (struct pool_class){
		.mem = 32u << 20, .cpus = 1, .target = 2, .starting = 1, .ready = 1};
	add_vmm(0, false, CTL_STATE_SHELL)->cls = c; /* starting */
	struct vmm *r = add_vmm(1, false, CTL_STATE_SHELL);
	r->cls = c;
	r->ready = true;
	c->ready_list = r;
	struct vmm *cold = add_vmm(2, true, CTL_STATE_STARTING);
	cold->cold = cold->ready = true;
	add_vmm(3, true, CTL_STATE_RUNNING)->from_pool = true;
	add_vmm(4, true, CTL_STATE_RUNNING)->child = false;
	vmm_gone = false;
}

/* The checks are not instrumented for coverage: their compares would steer
 * the fuzzer and cost time (as in fuzz_pci). */
__attribute__((no_sanitize("coverage"))) static bool buried(const struct vmm *v)
{
	for (const struct vmm *g = d.graveyard; g; g = g->next_dead)
		if (g == v)
			return true;
	return false;
}

__attribute__((no_sanitize("coverage"))) static void check_wispd(void)
{
	const struct pool_class *c = &d.cfg.classes[0];
	unsigned n = 0;
	for (const struct vmm *v = c->ready_list; v; v = v->next_ready) {
		CHECK(++n <= NR_VMMS); /* no cycle */
		CHECK(v->ready && !v->is_vm && !buried(v));
	}
	CHECK(n == c->ready);
	CHECK(c->starting <= 1);
	for (int i = 0; i < NR_VMMS; i++) {
		const struct vmm *v = vmms[i];
		if (!v)
			continue;
		CHECK(v->state <= CTL_STATE_LAST);
		CHECK(!v->final || v->state == CTL_STATE_EXITED || v->state == CTL_STATE_CRASHED);
		CHECK(!v->mem || !vm_check_mem(v->mem, "", "", (char[64]){0}, 64));
		CHECK(v->mig.state <= CTL_MIG_FAILED);
	}
}

__attribute__((no_sanitize("coverage"))) static void wispd_hears(int i, const void *msg, size_t len)
{
	struct vmm *v = vmms[i];
	if (!v)
		return;
	vmm_on_message(&d, v, msg, len);
	for (int k = 0; k < NR_VMMS; k++)
		if (vmms[k] && buried(vmms[k]))
			vmms[k] = NULL;
	check_wispd();
}

static void to_wispd(const void *msg, size_t len)
{
	wispd_hears(2, msg, len); /* the VMM side plays the cold VM */
}

/* The API's view of what the VMMs said. */
static void check_api(const char *url)
{
	struct request *rq = api_request_new(&d, NULL);
	const char *reply;
	size_t len;
	CHECK(rq);
	CHECK(api_request_route(rq, "GET", url, &reply, &len) == 200);
	CHECK(fuzz_json_ok(reply, len));
	api_request_free(&d, rq);
}

/* --- the VMM side ------------------------------------------------------------------ */

/* A unikernel shell, or (linux_shell) a Linux pool class's shell of 32 MiB
 * and 1 vCPU, which keeps its VM for a configuration of its shape. */
static void vmm_reset(bool linux_shell)
{
	vm_config_free(&sh.cfg); /* a configuration that failed is not freed: its VMM exits */
	free(sh.record);
	memset(&sh, 0, sizeof(sh));
	sh.conn = FAKE_CONN;
	sh.listen_fd = sh.epfd = -1;
	sh.vm.fd = -1;
	memcpy(sh.me.id, "0123456789ab", 13);
	sh.me.pid = 4242;
	sh.me.mem = 32u << 20;
	sh.me.state = CTL_STATE_SHELL;
	sh.shape = (struct vm_shape){.mem = sh.me.mem, .cpus = 1, .linux_guest = linux_shell};
}

static void vmm_hears(void *msg, size_t len, bool with_fd)
{
	if (vmm_gone)
		return;
	int fd = with_fd ? dup(devnull) : -1;
	replies = 0;
	if (setjmp(vmm_exited)) { /* CTL_DESTROY */
		vmm_gone = true;
		return;
	}
	if (!sh.configured) {
		int r = config_message(msg, len, fd);
		if (r == 0) {
			vmm_gone = true;
		} else if (r == 1) { /* as shell_main goes on */
			sh.configured = true;
			sh.me.state = CTL_STATE_RUNNING;
			send_info(CTL_INFO);
		}
		CHECK(replies <= 1);
		return;
	}
	/* serve() passes a file on with a save (a jailed VMM's snapshot) or a
	 * migration (its transport's channel) only. */
	const struct ctl_cmd *cmd = msg;
	if (fd >= 0 &&
	    (len < sizeof(struct ctl_cmd) || (cmd->type != CTL_SAVE && cmd->type != CTL_MIGRATE))) {
		close(fd);
		fd = -1;
	}
	serve_message(msg, len, fd);
	if (fd >= 0)
		close(fd);
	CHECK(replies >= 1 || len < sizeof(struct ctl_cmd));
}

/* jansson allocates for every value: 4 frames recorded per allocation, not
 * 30 (a report still has its full stack; where a block was allocated or
 * freed shows 4 frames). A quarantine of 32 MiB, not 256: freed blocks are
 * still kept for hundreds of inputs (an input frees well under 1 MiB), and
 * memory is reused while in cache instead of faulting in fresh pages. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "malloc_context_size=4:quarantine_size_mb=32";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static union {
		struct ctl_info info;
		struct ctl_config cfg;
		char buf[CTL_MSG_MAX];
	} m;
	setup();
	vmm_reset(size & 1);
	for (int nr = 0; size >= 5 && nr < 32; nr++) { /* 32 messages: enough for any story */
		uint8_t head = data[0];
		size_t len = (size_t)(data[1] | data[2] << 8),
		       present = (size_t)(data[3] | data[4] << 8);
		data += 5;
		size -= 5;
		if (len > sizeof(m))
			len = sizeof(m);
		if (present > size)
			present = size;
		memset(m.buf, 0, len);
		memcpy(m.buf, data, present < len ? present : len);
		data += present;
		size -= present;
		if (head == 0xff) { /* the API's view: 3/4 of the time when every input did it */
			check_api("/stats");
			check_api("/vms");
		} else if (head & 1)
			vmm_hears(&m, len, head & 2);
		else
			wispd_hears((head >> 2) % NR_VMMS, &m, len);
	}
	for (int i = 0; i < NR_VMMS; i++)
		if (vmms[i]) {
			vmms[i]->child = false;
			vmm_destroy(&d, vmms[i]);
			vmms[i] = NULL;
		}
	while (d.graveyard) {
		struct vmm *v = d.graveyard;
		d.graveyard = v->next_dead;
		vmm_free(v);
	}
	CHECK(!d.nr_vms && !d.waiting && !d.info_due);
	return 0;
}
