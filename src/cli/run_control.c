/* The control socket of a `wisp run --name NAME` VM: the same messages
 * wispd sends its VMMs (ctl_proto.h), on <runtime-dir>/run/NAME.sock, so
 * that `wisp save NAME FILE` reaches a foreground VM without a daemon.
 * Only `--name` opens it: a plain `wisp run` pays nothing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sys/epoll.h>

#include "cli/cli.h"
#include "security/security.h"
#include "control/ctl_proto.h"
#include "snapshot/snapshot.h"

int run_control_path(const char *name, char *buf, size_t len)
{
	char dir[200];
	ctl_default_runtime_dir(dir, sizeof(dir));
	int n = snprintf(buf, len, "%s/run/%s.sock", dir, name);
	return n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)
		       ? -ENAMETOOLONG
		       : 0;
}

bool run_control_exists(const char *name)
{
	char path[256];
	struct stat st;
	if (!ctl_valid_name(name) || run_control_path(name, path, sizeof(path)))
		return false;
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int run_control_save(const char *name, const char *file)
{
	char path[256];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	run_control_path(name, path, sizeof(path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "wisp: cannot reach VM '%s' at %s: %s\n", name, path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return WISP_EXIT_ERROR;
	}
	struct ctl_file m = {.type = CTL_SAVE};
	if (strlen(file) >= sizeof(m.path)) {
		fprintf(stderr, "wisp: save: file name too long\n");
		close(fd);
		return WISP_EXIT_ERROR;
	}
	memcpy(m.path, file, strlen(file) + 1);
	/* We make the file and the VM writes into it (a jailed VM opens no
	 * path); it takes its name once written. */
	char err[WISP_ERRLEN];
	struct snap_target *t = malloc(sizeof(*t));
	if (!t || snap_target_open(file, t, err, sizeof(err))) {
		fprintf(stderr, "wisp: cannot save VM '%s': %s\n", name, t ? err : "out of memory");
		free(t);
		close(fd);
		return WISP_EXIT_ERROR;
	}
	struct ctl_info in;
	int r = ctl_send(fd, &m, sizeof(m), t->fd);
	ssize_t n = 0;
	if (!r) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		/* A save takes milliseconds; give a busy machine a minute. */
		if (poll(&p, 1, 60000) <= 0)
			r = -ETIMEDOUT;
		else
			n = ctl_recv(fd, &in, sizeof(in), NULL);
	}
	close(fd);
	if (r || n != (ssize_t)sizeof(in)) {
		fprintf(stderr, "wisp: VM '%s' did not answer the save: %s\n", name,
			strerror(r	 ? -r
				 : n < 0 ? (int)-n
					 : EPROTO));
		snap_target_abort(t);
		free(t);
		return WISP_EXIT_ERROR;
	}
	in.reason[sizeof(in.reason) - 1] = 0;
	if (in.type != CTL_INFO) {
		fprintf(stderr, "wisp: cannot save VM '%s': %s\n", name, in.reason);
		snap_target_abort(t);
		free(t);
		return WISP_EXIT_ERROR;
	}
	r = snap_target_commit(t, NULL, NULL, err, sizeof(err));
	free(t);
	if (r) {
		fprintf(stderr, "wisp: cannot save VM '%s': %s\n", name, err);
		return WISP_EXIT_ERROR;
	}
	printf("saved %s to %s (%.1f MiB of memory written, %.2f ms)\n", name, file,
	       (double)in.op_bytes / 1048576.0, (double)in.op_total_ns / 1e6);
	return 0;
}

/* --- the VM's side ------------------------------------------------------------ */

static struct {
	int listen_fd, epfd;
	char path[256];
	const struct run_config *cfg;
} rc = {.listen_fd = -1, .epfd = -1};

static void reply_failed(int fd, int error, const char *why)
{
	struct ctl_info in;
	memset(&in, 0, sizeof(in));
	in.type = CTL_FAILED;
	in.error = error;
	snprintf(in.reason, sizeof(in.reason), "%s", why);
	ctl_send(fd, &in, sizeof(in), -1);
}

/* One client: a save request. Runs on vCPU 0's thread, between two
 * KVM_RUNs: the other vCPUs are parked first, and vCPU 0's own pending exit
 * is completed, so every vCPU is at an instruction boundary. */
static void serve_client(struct vm *vm, int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	union {
		struct ctl_cmd cmd;
		struct ctl_file file;
	} m;
	if (poll(&p, 1, 1000) <= 0)
		return;
	int out = -1; /* the file the client made for the snapshot */
	ssize_t n = ctl_recv(fd, &m, sizeof(m), &out);
	if (n != (ssize_t)sizeof(m.file) || m.cmd.type != CTL_SAVE) {
		if (out >= 0)
			close(out);
		reply_failed(fd, -EINVAL, "this VM only takes save requests");
		return;
	}
	m.file.path[sizeof(m.file.path) - 1] = 0;
	char err[WISP_ERRLEN];
	struct snap_times t;
	struct vcpu *self = &vm->vcpus[0];
	int r = vm_pause(vm, self);
	if (r) {
		reply_failed(fd, r, "the VM is stopping");
		return;
	}
	r = vcpu_complete_io(self);
	if (!r && out >= 0)
		r = snap_save_fd(vm, out, m.file.path, rc.cfg->config, rc.cfg->config_len, &t, err,
				 sizeof(err));
	else if (!r)
		r = snap_save_file(vm, m.file.path, rc.cfg->config, rc.cfg->config_len, &t, NULL,
				   err, sizeof(err));
	else
		snprintf(err, sizeof(err), "cannot complete vCPU 0's exit: %s", strerror(-r));
	vm_unpause(vm);
	if (out >= 0)
		close(out);
	if (r) {
		reply_failed(fd, r, err);
		return;
	}
	struct ctl_info in;
	memset(&in, 0, sizeof(in));
	in.type = CTL_INFO;
	in.state = CTL_STATE_RUNNING;
	in.mem = vm->mem.size;
	in.op_total_ns = t.total;
	in.op_state_ns = t.state;
	in.op_memory_ns = t.memory;
	in.op_sync_ns = t.sync;
	in.op_bytes = t.mem_bytes;
	ctl_send(fd, &in, sizeof(in), -1);
}

static void serve(struct vm *vm)
{
	for (;;) {
		int c = accept4(rc.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return;
		if (sec_peer_allowed(c, (gid_t)-1, NULL)) { /* only the user of `wisp run` */
			close(c);
			continue;
		}
		serve_client(vm, c);
		close(c);
	}
}

int run_control_start(struct vm *vm, const struct run_config *cfg, char *err, size_t errlen)
{
	char dir[200];
	ctl_default_runtime_dir(dir, sizeof(dir));
	if (run_control_path(cfg->name, rc.path, sizeof(rc.path))) {
		snprintf(err, errlen, "socket path too long");
		return -1;
	}
	char rundir[256];
	snprintf(rundir, sizeof(rundir), "%.200s/run", dir);
	mkdir(dir, 0711);
	mkdir(rundir, 0700);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, rc.path, strlen(rc.path) + 1);
	/* A live VM of that name answers; a stale socket does not. */
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(probe);
		snprintf(err, errlen, "a VM with that name is already running (%s)", rc.path);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	unlink(rc.path);
	rc.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct f_owner_ex o = {.type = F_OWNER_TID, .pid = gettid()};
	struct epoll_event ev = {.events = EPOLLIN};
	if (rc.listen_fd < 0 || bind(rc.listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(rc.listen_fd, 4) < 0 ||
	    /* Readiness kicks vCPU 0 (this thread runs it) out of KVM_RUN. */
	    fcntl(rc.listen_fd, F_SETOWN_EX, &o) < 0 ||
	    fcntl(rc.listen_fd, F_SETSIG, VCPU_KICK_SIGNAL) < 0 ||
	    fcntl(rc.listen_fd, F_SETFL, O_ASYNC | O_NONBLOCK) < 0 ||
	    (rc.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    epoll_ctl(rc.epfd, EPOLL_CTL_ADD, rc.listen_fd, &ev) < 0) {
		snprintf(err, errlen, "control socket %s: %s", rc.path, strerror(errno));
		run_control_stop();
		return -1;
	}
	signal(SIGIO, SIG_IGN);
	rc.cfg = cfg;
	vm->ctl_fd = rc.epfd;
	vm->ctl_serve = serve;
	return 0;
}

void run_control_stop(void)
{
	if (rc.listen_fd >= 0) {
		close(rc.listen_fd);
		unlink(rc.path);
	}
	if (rc.epfd >= 0)
		close(rc.epfd);
	rc.listen_fd = rc.epfd = -1;
}
