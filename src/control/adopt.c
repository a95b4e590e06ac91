/* Re-adoption after a wispd restart (LightVM's noxs: no central store to
 * recover from). Each VM's directory is the record: a live VMM answers on
 * its ctl.sock and says who it is; a dead one left a status file (or, if it
 * was killed, only wispd's info file) and is listed as exited or crashed,
 * never dropped. Shells of the previous wispd exit when their socketpair
 * closes; their directories are removed here. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "control/wispd.h"

/* Connect to dir/<id>/ctl.sock (relative to the runtime directory). */
static int connect_vmm(const char *dir, const char *id)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s/%s", dir, id, CTL_SOCK_NAME);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* Ask a live VMM who it is; false if it does not answer within 2 s. */
static bool query(int s, struct ctl_info *in)
{
	struct timeval tv = {.tv_sec = 2};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct ctl_cmd c = {.type = CTL_QUERY};
	if (ctl_send(s, &c, sizeof(c), -1))
		return false;
	for (int i = 0; i < 4; i++) {
		char why[128];
		ssize_t n = ctl_recv(s, in, sizeof(*in), NULL);
		if (n < 0 || ctl_check_info(in, (size_t)n, why, sizeof(why))) {
			if (n >= 0)
				log_warn(NULL, "adopting a VMM: malformed report: %s", why);
			return false;
		}
		if (in->type == CTL_INFO || in->type == CTL_EXIT)
			return true;
	}
	return false;
}

static json_t *load(const char *id, const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "vms/%s/%s", id, name);
	return json_load_file(path, 0, NULL);
}

static uint64_t jnum(json_t *o, const char *key)
{
	json_t *j = json_object_get(o, key);
	return json_is_integer(j) && json_integer_value(j) > 0 ? (uint64_t)json_integer_value(j)
							       : 0;
}

static void jstr(json_t *o, const char *key, char *dst, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (s && *s)
		snprintf(dst, cap, "%s", s);
}

/* What wispd recorded at create time. */
static void apply_info_file(struct vmm *v, json_t *info)
{
	if (!info)
		return;
	if (!v->name[0])
		jstr(info, "name", v->name, sizeof(v->name));
	const char *img = json_string_value(json_object_get(info, "image"));
	const char *cmd = json_string_value(json_object_get(info, "cmdline"));
	v->image = img ? strdup(img) : NULL;
	v->cmdline = cmd ? strdup(cmd) : NULL;
	json_t *args = json_object_get(info, "args");
	v->args = json_is_array(args) ? json_incref(args) : NULL;
	if (!v->mem)
		v->mem = jnum(info, "mem");
	if (!v->created_wall_ns)
		v->created_wall_ns = jnum(info, "created_wall_ns");
	if (json_is_true(json_object_get(info, "from_pool")))
		v->from_pool = true;
}

/* How a VM whose VMM is gone ended: its status file, else crashed. */
static void apply_status_file(struct vmm *v, json_t *st)
{
	v->gone = true;
	v->final = true;
	v->state = CTL_STATE_CRASHED;
	if (!st) {
		snprintf(v->reason, sizeof(v->reason),
			 "VMM died while wispd was not running, without a report (killed?)");
		return;
	}
	jstr(st, "name", v->name, sizeof(v->name));
	const char *state = json_string_value(json_object_get(st, "state"));
	if (state && !strcmp(state, "exited"))
		v->state = CTL_STATE_EXITED;
	json_t *es = json_object_get(st, "exit_status");
	v->exit_status = json_is_integer(es) ? (int)json_integer_value(es) : 0;
	jstr(st, "reason", v->reason, sizeof(v->reason));
	v->mem = jnum(st, "mem");
	v->created_wall_ns = jnum(st, "created_wall_ns");
	v->request_ns = jnum(st, "request_ns");
	v->started_ns = jnum(st, "started_ns");
	v->first_hypercall_ns = jnum(st, "first_hypercall_ns");
	v->from_pool = json_is_true(json_object_get(st, "from_pool"));
	json_t *ex = json_object_get(st, "exits");
	v->exits = (struct exit_stats){
		.io = jnum(ex, "io"),
		.mmio = jnum(ex, "mmio"),
		.hlt = jnum(ex, "hlt"),
		.shutdown = jnum(ex, "shutdown"),
		.intr = jnum(ex, "intr"),
		.hypercall = jnum(ex, "hypercall"),
		.unhandled = jnum(ex, "unhandled"),
		.other = jnum(ex, "other"),
	};
}

/* Adopt vms/<id>; false if there is nothing to adopt (the caller removes it). */
static bool adopt_one(struct wispd *d, const char *id)
{
	struct vmm *v = vmm_new();
	if (!v)
		return true;
	snprintf(v->id, sizeof(v->id), "%s", id);
	struct ctl_info in;
	int s = connect_vmm("vms", id);
	json_t *info = load(id, CTL_INFO_NAME);
	if (s >= 0 && query(s, &in) && !strcmp(in.id, id)) {
		snprintf(v->name, sizeof(v->name), "%s", in.name);
		/* Its pid from the kernel, not from its word: a pid it made up
		 * could be a child's of ours, and SIGCHLD would find the wrong VM. */
		struct ucred cr;
		socklen_t crlen = sizeof(cr);
		v->pid = getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0 ? cr.pid : -1;
		v->mem = in.mem;
		v->created_wall_ns = in.created_wall_ns;
		v->request_ns = in.request_ns;
		v->from_pool = in.flags & CTL_FLAG_FROM_POOL;
		vmm_apply_info(v, &in);
		/* A VMM's word is input like any other: a state out of range
		 * would index arrays (GET /stats counts VMs by state). */
		v->state = in.state <= CTL_STATE_LAST && in.state != CTL_STATE_SHELL
				   ? (enum ctl_state)in.state
				   : CTL_STATE_RUNNING;
		struct timeval tv = {0};
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		fcntl(s, F_SETFL, O_NONBLOCK);
		v->fd = s;
		s = -1;
	} else {
		json_t *st = load(id, CTL_STATUS_NAME);
		if (!st && !info) { /* a shell that never became a VM */
			json_decref(info);
			if (s >= 0)
				close(s);
			vmm_free(v);
			return false;
		}
		apply_status_file(v, st);
		json_decref(st);
	}
	if (s >= 0)
		close(s);
	apply_info_file(v, info);
	json_decref(info);
	if (!v->name[0])
		snprintf(v->name, sizeof(v->name), "%s", v->id);
	bool name_taken = table_find_name(d, v->name) != NULL;
	char name[sizeof(v->name)];
	memcpy(name, v->name, sizeof(name));
	if (name_taken) /* cannot happen unless files were edited; stay reachable by id */
		v->name[0] = 0;
	table_add_vm(d, v);
	if (name_taken)
		memcpy(v->name, name, sizeof(name));
	if (v->fd >= 0) {
		if (v->pid > 0) /* the pid map forgets only pids > 0 */
			table_add_pid(d, v);
		wispd_watch(d, v);
	}
	d->adopted++;
	return true;
}

/* Each entry of a runtime subdirectory. */
static void scan(struct wispd *d, int dirfd, bool vms)
{
	int fd = dup(dirfd);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dp) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(dp);
	struct dirent *e;
	while ((e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		if (!ctl_valid_id(e->d_name)) {
			log_warn(NULL, "ignoring %s/%s: not a VM directory", vms ? "vms" : "shells",
				 e->d_name);
			continue;
		}
		if (!vms) {
			/* A configured VM whose directory was not yet moved
			 * listens; a shell does not. */
			int s = connect_vmm("shells", e->d_name);
			if (s >= 0) {
				close(s);
				if (renameat(d->shells_fd, e->d_name, d->vms_fd, e->d_name) == 0 &&
				    adopt_one(d, e->d_name))
					continue;
			}
			dir_remove(d->shells_fd, e->d_name);
			continue;
		}
		if (table_find(d, e->d_name)) /* moved here from shells/ just now */
			continue;
		if (!adopt_one(d, e->d_name))
			dir_remove(d->vms_fd, e->d_name);
	}
	closedir(dp);
}

void adopt_all(struct wispd *d)
{
	scan(d, d->shells_fd, false);
	scan(d, d->vms_fd, true);
	jails_adopt(d);
}
