/* The shell pool (LightVM's split toolstack): per class (kind of guest,
 * memory size, vCPUs), VMM
 * processes that have done everything a create does not need to know
 * about. wispd spawns them in the background; a create takes one; an empty
 * class falls back to spawning a VMM for that one create (the cold path). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "control/wispd.h"

/* Refill backs off after consecutive failures: 100 ms, doubling, to 5 s. */
#define RETRY_BASE_NS (100ull * 1000000)
#define RETRY_MAX_NS  (5000ull * 1000000)

void dir_remove(int parent_fd, const char *name)
{
	static const char *const known[] = {CTL_SOCK_NAME, CTL_CONSOLE_NAME, CTL_INFO_NAME,
					    CTL_STATUS_NAME};
	int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		unlinkat(fd, known[i], 0);
	if (unlinkat(parent_fd, name, AT_REMOVEDIR) == 0) {
		close(fd);
		return;
	}
	DIR *dp = fdopendir(fd); /* something unexpected is left: remove it all */
	if (!dp) {
		close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(dp)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(fd, e->d_name, 0);
	closedir(dp);
	unlinkat(parent_fd, name, AT_REMOVEDIR);
}

struct pool_class *pool_class_for(struct wispd *d, uint64_t mem, unsigned cpus, bool linux_guest)
{
	for (int i = 0; i < d->cfg.nr_classes; i++) {
		struct pool_class *c = &d->cfg.classes[i];
		if (c->mem == mem && c->cpus == cpus && c->linux_guest == linux_guest)
			return c;
	}
	return NULL;
}

const char *pool_class_name(const struct pool_class *c, char *buf, size_t len)
{
	if (c->linux_guest)
		snprintf(buf, len, "linux:%lluM:%u", (unsigned long long)(c->mem >> 20), c->cpus);
	else
		snprintf(buf, len, "%lluM", (unsigned long long)(c->mem >> 20));
	return buf;
}

struct vmm *pool_spawn(struct wispd *d, struct pool_class *cls, uint64_t mem, int recv_chan,
		       uint64_t recv_timeout_ms, char *err, size_t errlen)
{
	bool cold = cls == NULL;
	struct vmm *v = vmm_new();
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const char *where = cold ? "vms" : "shells";
	int parent = cold ? d->vms_fd : d->shells_fd;
	int e = 0;
	for (int tries = 0; tries < 8; tries++) {
		ctl_new_id(v->id);
		e = mkdirat(parent, v->id, 0700) < 0 ? errno : 0;
		if (e != EEXIST)
			break;
	}
	if (e) {
		snprintf(err, errlen, "cannot create %s/%s/%s: %s", d->cfg.runtime_dir, where,
			 v->id, strerror(e));
		vmm_free(v);
		return NULL;
	}
	struct jail_spawn js;
	if (jails_spawn_prepare(d, v, recv_chan >= 0 ? 0 : mem, &js, err, errlen)) {
		dir_remove(parent, v->id);
		vmm_free(v);
		return NULL;
	}
	char dir[512], memstr[24], ringstr[24], tostr[24], cpustr[12];
	snprintf(dir, sizeof(dir), "%s/%s/%s", d->cfg.runtime_dir, where, v->id);
	snprintf(memstr, sizeof(memstr), "%llu", (unsigned long long)mem);
	snprintf(ringstr, sizeof(ringstr), "%llu", (unsigned long long)d->cfg.ring_size);
	snprintf(tostr, sizeof(tostr), "%llu", (unsigned long long)recv_timeout_ms);
	char *argv[32] = {d->cfg.vmm_path, "--id", v->id, "--dir",  dir,    "--mem",
			  memstr,	   "--fd", "3",	  "--ring", ringstr};
	int argc = 11;
	if (cls && cls->linux_guest) { /* a Linux shell: irqchip and vCPUs */
		snprintf(cpustr, sizeof(cpustr), "%u", cls->cpus);
		argv[argc++] = "--linux";
		argv[argc++] = "--cpus";
		argv[argc++] = cpustr;
	}
	if (recv_chan >= 0) { /* the transport's channel: the fd after the lock's */
		argv[argc++] = "--receive";
		argv[argc++] = js.lock_fd >= 0 ? "5" : "4";
		argv[argc++] = "--receive-timeout";
		argv[argc++] = tostr;
	}
	if (!d->cfg.seccomp) {
		argv[argc++] = "--seccomp";
		argv[argc++] = "off";
	}
	if (d->cfg.log_format != LOG_FORMAT_TEXT) { /* the VMM logs as wispd does */
		argv[argc++] = "--log-format";
		argv[argc++] = (char *)log_format_name(d->cfg.log_format);
	}
	if (js.lock_fd >= 0) {
		argv[argc++] = "--jail-uid";
		argv[argc++] = js.uid;
		argv[argc++] = "--jail-dir";
		argv[argc++] = js.dir;
		if (js.cgroup[0]) {
			argv[argc++] = "--cgroup";
			argv[argc++] = js.cgroup;
		}
		/* A unikernel shell is given only fds (an image, a snapshot):
		 * jailed before it is taken. A cold VMM or a Linux shell opens
		 * the files its configuration names (kernel, initrd, disks). */
		if (!cold && recv_chan < 0 && !cls->linux_guest)
			argv[argc++] = "--jail-early";
	}
	argv[argc] = NULL;
	/* The VMM holds its uid's lock (as fd 4) for life. */
	int r = vmm_spawn_process(argv, js.lock_fd, recv_chan, &v->pid, &v->fd);
	if (js.lock_fd >= 0)
		close(js.lock_fd);
	js.lock_fd = -1;
	if (r) {
		snprintf(err, errlen, "cannot start the VMM '%s': %s", d->cfg.vmm_path,
			 strerror(-r));
		goto fail;
	}
	v->child = true;
	v->mem = mem;
	v->cold = cold;
	v->state = cold ? CTL_STATE_STARTING : CTL_STATE_SHELL;
	table_add_pid(d, v);
	wispd_watch(d, v);
	if (!cold) {
		v->cls = cls;
		v->cls->starting++;
		v->cls->refills++;
	}
	return v;
fail:
	if (js.lock_fd >= 0)
		close(js.lock_fd);
	jails_release(d, v);
	dir_remove(parent, v->id);
	vmm_free(v);
	return NULL;
}

void pool_refill(struct wispd *d)
{
	if (d->stopping)
		return;
	uint64_t now = util_now_ns();
	for (int i = 0; i < d->cfg.nr_classes; i++) {
		struct pool_class *c = &d->cfg.classes[i];
		while (c->ready + c->starting < c->target && now >= c->retry_at_ns) {
			char err[CTL_REASON_MAX];
			if (pool_spawn(d, c, c->mem, -1, 0, err, sizeof(err)))
				continue;
			pool_shell_failed(d, NULL, err);
			break;
		}
	}
}

struct vmm *pool_take(struct wispd *d, uint64_t mem, unsigned cpus, bool linux_guest)
{
	struct pool_class *c = pool_class_for(d, mem, cpus, linux_guest);
	if (!c || !c->ready_list)
		return NULL;
	struct vmm *v = c->ready_list;
	c->ready_list = v->next_ready;
	v->next_ready = NULL;
	c->ready--;
	c->hits++;
	return v;
}

void pool_adopt_dir(struct wispd *d, struct vmm *v)
{
	/* Off the critical path (the VMM works relative to its cwd, which
	 * moves along). Until this runs, a restarted wispd still finds the VM
	 * in shells/: its socket listens, so adopt.c moves it. */
	if (renameat(d->shells_fd, v->id, d->vms_fd, v->id) < 0)
		log_warn(v->id, "cannot move shells/%s to vms/: %s", v->id, strerror(errno));
}

void pool_shell_ready(struct wispd *d, struct vmm *v)
{
	struct pool_class *c = v->cls;
	if (!c)
		return;
	c->starting--;
	c->ready++;
	c->failures = 0;
	c->retry_at_ns = 0;
	v->next_ready = c->ready_list;
	c->ready_list = v;
	(void)d;
}

/* Back off refilling class c after a failure. */
static void back_off(struct wispd *d, struct pool_class *c, const char *why)
{
	c->failures++;
	uint64_t delay = RETRY_BASE_NS << (c->failures < 6 ? c->failures - 1 : 5);
	c->retry_at_ns = util_now_ns() + (delay < RETRY_MAX_NS ? delay : RETRY_MAX_NS);
	if (strcmp(c->last_error, why)) {
		char name[48];
		log_warn(NULL, "pool %s: shell failed: %s", pool_class_name(c, name, sizeof(name)),
			 why);
	}
	snprintf(c->last_error, sizeof(c->last_error), "%s", why);
	wispd_update_timer(d);
}

void pool_shell_failed(struct wispd *d, struct vmm *v, const char *why)
{
	if (!v) { /* spawning itself failed: every class backs off */
		for (int i = 0; i < d->cfg.nr_classes; i++)
			back_off(d, &d->cfg.classes[i], why);
		return;
	}
	struct pool_class *c = v->cls;
	if (c) {
		if (v->ready) {
			struct vmm **p = &c->ready_list;
			while (*p && *p != v)
				p = &(*p)->next_ready;
			if (*p) {
				*p = v->next_ready;
				c->ready--;
			}
		} else {
			c->starting--;
		}
		c->shell_failures++;
		/* A ready shell that dies is not a reason to slow refills. */
		if (!v->ready)
			back_off(d, c, why);
	}
	if (!v->gone && v->child)
		kill(v->pid, SIGKILL);
	v->gone = true;
	vmm_close(d, v);
	table_remove(d, v);
	dir_remove(d->shells_fd, v->id);
	wispd_bury(d, v);
}

int transport_spawn(struct wispd *d, const char *mode, const char *addr, const struct mig_creds *c,
		    uint64_t deadline_ms, char *err, size_t errlen)
{
	char path[sizeof(d->cfg.vmm_path) + 16], dl[24];
	snprintf(path, sizeof(path), "%s", d->cfg.vmm_path);
	char *slash = strrchr(path, '/');
	snprintf(slash ? slash + 1 : path, sizeof(path) - (size_t)(slash ? slash + 1 - path : 0),
		 "wisp-tls");
	snprintf(dl, sizeof(dl), "%llu", (unsigned long long)deadline_ms);
	char *argv[24];
	int n = 0;
	argv[n++] = path;
	argv[n++] = "--fd";
	argv[n++] = "3";
	argv[n++] = (char *)mode;
	argv[n++] = (char *)addr;
	argv[n++] = "--deadline-ms";
	argv[n++] = dl;
	const char *pairs[][2] = {{"--psk", c->psk_file}, {"--psk-identity", c->psk_identity},
				  {"--ca", c->ca},	  {"--cert", c->cert},
				  {"--key", c->key},	  {"--server-name", c->server_name}};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (pairs[i][1]) {
			argv[n++] = (char *)pairs[i][0];
			argv[n++] = (char *)pairs[i][1];
		}
	}
	if (c->cleartext)
		argv[n++] = "--cleartext";
	argv[n] = NULL;
	int chan;
	int r = transport_spawn_process(argv, &chan);
	if (r) {
		snprintf(err, errlen, "cannot start the migration transport '%s': %s", path,
			 strerror(-r));
		return -1;
	}
	return chan;
}
