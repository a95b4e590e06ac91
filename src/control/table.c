/* wispd's table of VMMs: hash maps by id, name and pid (so that create,
 * destroy and look-up cost the same with 10 or 10,000 VMs), what VMMs tell
 * wispd, and what happens when one ends. Nothing here blocks: a VMM is
 * asked, and its answer comes back through the event loop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "vmm/config.h"
#include "control/wispd.h"
#include "security/security.h"

struct vmm *vmm_new(void)
{
	struct vmm *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->ev = EV_VMM;
	v->fd = -1;
	v->pid = -1;
	return v;
}

void vmm_free(struct vmm *v)
{
	if (!v)
		return;
	free(v->image);
	free(v->cmdline);
	json_decref(v->args);
	json_decref(v->config);
	free(v);
}

void table_add_pid(struct wispd *d, struct vmm *v)
{
	hmap_insert(&d->by_pid, &v->by_pid, hmap_hash_u64((uint64_t)v->pid));
}

void table_add_vm(struct wispd *d, struct vmm *v)
{
	v->is_vm = true;
	hmap_insert(&d->by_id, &v->by_id, hmap_hash_str(v->id));
	d->nr_vms++;
	if (v->name[0]) {
		hmap_insert(&d->by_name, &v->by_name, hmap_hash_str(v->name));
		v->in_names = true;
	}
}

/* Take v out of the pid map (its pid means nothing once it is gone). */
static void table_forget_pid(struct wispd *d, struct vmm *v)
{
	if (v->pid > 0 && table_find_pid(d, v->pid) == v)
		hmap_remove(&d->by_pid, &v->by_pid);
}

void table_remove(struct wispd *d, struct vmm *v)
{
	if (v->is_vm && table_find(d, v->id) == v) {
		hmap_remove(&d->by_id, &v->by_id);
		d->nr_vms--;
	}
	if (v->in_names) {
		hmap_remove(&d->by_name, &v->by_name);
		v->in_names = false;
	}
	table_forget_pid(d, v);
}

struct vmm *table_find_name(struct wispd *d, const char *name)
{
	for (struct hmap_node *n = hmap_find(&d->by_name, hmap_hash_str(name)); n;
	     n = hmap_next_same(n)) {
		struct vmm *v = (struct vmm *)((char *)n - offsetof(struct vmm, by_name));
		if (!strcmp(v->name, name))
			return v;
	}
	return NULL;
}

struct vmm *table_find(struct wispd *d, const char *key)
{
	for (struct hmap_node *n = hmap_find(&d->by_id, hmap_hash_str(key)); n;
	     n = hmap_next_same(n)) {
		struct vmm *v = (struct vmm *)((char *)n - offsetof(struct vmm, by_id));
		if (!strcmp(v->id, key))
			return v;
	}
	return table_find_name(d, key);
}

struct vmm *table_find_pid(struct wispd *d, pid_t pid)
{
	for (struct hmap_node *n = hmap_find(&d->by_pid, hmap_hash_u64((uint64_t)pid)); n;
	     n = hmap_next_same(n)) {
		struct vmm *v = (struct vmm *)((char *)n - offsetof(struct vmm, by_pid));
		if (v->pid == pid)
			return v;
	}
	return NULL;
}

bool vmm_live(const struct vmm *v)
{
	return !v->gone && !v->final && v->fd >= 0;
}

void vmm_close(struct wispd *d, struct vmm *v)
{
	if (v->fd < 0)
		return;
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, v->fd, NULL);
	close(v->fd);
	v->fd = -1;
}

static void unlink_waiting(struct wispd *d, struct pending *p)
{
	if (p->gprev)
		p->gprev->gnext = p->gnext;
	else if (d->waiting == p)
		d->waiting = p->gnext;
	if (p->gnext)
		p->gnext->gprev = p->gprev;
	else if (d->waiting_tail == p)
		d->waiting_tail = p->gprev;
	p->gprev = p->gnext = NULL;
}

/* Pop the oldest entry waiting on v: its request, or NULL for the slot of
 * one already answered by a timeout. */
static struct request *pop_pending(struct wispd *d, struct vmm *v)
{
	struct pending *p = v->pending;
	if (!p)
		return NULL;
	v->pending = p->next;
	if (!v->pending)
		v->pending_tail = NULL;
	struct request *req = p->req;
	if (req)
		unlink_waiting(d, p);
	free(p);
	return req;
}

/* Answer every waiting request: v cannot reply any more. */
static void fail_pending(struct wispd *d, struct vmm *v, const char *why)
{
	while (v->pending) {
		struct request *req = pop_pending(d, v);
		if (req)
			api_reply(d, req, v, NULL, why);
	}
}

int vmm_queue(struct wispd *d, struct vmm *v, struct request *req)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->req = req;
	p->vmm = v;
	p->deadline = util_now_ns() + d->cfg.answer_timeout_ms * 1000000u;
	if (v->pending_tail)
		v->pending_tail->next = p;
	else
		v->pending = p;
	v->pending_tail = p;
	p->gprev = d->waiting_tail;
	if (d->waiting_tail)
		d->waiting_tail->gnext = p;
	else
		d->waiting = p;
	d->waiting_tail = p;
	wispd_update_timer(d);
	return 0;
}

int vmm_ask_msg(struct wispd *d, struct vmm *v, const void *msg, size_t len, struct request *req)
{
	return vmm_ask_msg_fd(d, v, msg, len, -1, req);
}

int vmm_ask_msg_fd(struct wispd *d, struct vmm *v, const void *msg, size_t len, int fd,
		   struct request *req)
{
	if (!vmm_live(v))
		return -ESRCH;
	/* Queued first: a reply must never find an empty queue. */
	int r = vmm_queue(d, v, req);
	if (r)
		return r;
	r = ctl_send(v->fd, msg, len, fd);
	if (r)
		vmm_unqueue(d, v, req);
	return r;
}

int vmm_ask(struct wispd *d, struct vmm *v, uint32_t type, struct request *req)
{
	struct ctl_cmd c = {.type = type};
	return vmm_ask_msg(d, v, &c, sizeof(c), req);
}

void vmm_unqueue(struct wispd *d, struct vmm *v, struct request *req)
{
	struct pending **p = &v->pending, *prev = NULL;
	while (*p && (*p)->req != req) {
		prev = *p;
		p = &(*p)->next;
	}
	if (!*p)
		return;
	struct pending *gone = *p;
	*p = gone->next;
	if (v->pending_tail == gone)
		v->pending_tail = prev;
	unlink_waiting(d, gone);
	free(gone);
}

void table_expire(struct wispd *d, uint64_t now)
{
	while (d->waiting && d->waiting->deadline <= now) {
		struct pending *p = d->waiting;
		struct request *req = p->req;
		struct vmm *v = p->vmm;
		unlink_waiting(d, p);
		p->req = NULL; /* the slot stays: a late reply must not answer another */
		api_timeout(d, req, v);
		if (v->state == CTL_STATE_STARTING)
			vmm_destroy(d, v);
	}
}

void table_abandon(struct wispd *d)
{
	while (d->waiting) {
		struct pending *p = d->waiting;
		struct request *req = p->req;
		unlink_waiting(d, p);
		p->req = NULL;
		api_abandon(req);
	}
}

void vmm_apply_info(struct vmm *v, const struct ctl_info *in)
{
	/* Final is final: a late report must not bring an ended VM back. */
	if (!v->final && in->state <= CTL_STATE_LAST && in->state != CTL_STATE_SHELL)
		v->state = (enum ctl_state)in->state;
	if (in->mem)
		v->mem = in->mem;
	v->exits = in->exits;
	if (in->nr_devs <= CTL_DEV_MAX) {
		v->nr_devs = in->nr_devs;
		memcpy(v->devs, in->devs, sizeof(v->devs));
		for (unsigned i = 0; i < CTL_DEV_MAX; i++)
			v->devs[i].type[sizeof(v->devs[i].type) - 1] = 0;
	}
	if (in->first_hypercall_ns)
		v->first_hypercall_ns = in->first_hypercall_ns;
	if (in->started_ns)
		v->started_ns = in->started_ns;
	if (in->type == CTL_EXIT && !v->final) {
		v->final = true;
		v->ended_ns = util_now_ns();
		v->exit_status = in->exit_status;
		memcpy(v->reason, in->reason, sizeof(v->reason));
		v->reason[sizeof(v->reason) - 1] = 0;
	}
}

/* Write a JSON object to `name` in v's directory (atomically). */
static void write_json(struct wispd *d, struct vmm *v, const char *name, json_t *o)
{
	char tmp[64], path[64];
	snprintf(path, sizeof(path), "%s/%s", v->id, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", v->id, name);
	int fd = openat(d->vms_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char *s = json_dumps(o, JSON_COMPACT);
	bool ok = s && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	free(s);
	close(fd);
	if (ok)
		renameat(d->vms_fd, tmp, d->vms_fd, path);
	else
		unlinkat(d->vms_fd, tmp, 0);
}

void vmm_write_info(struct wispd *d, struct vmm *v)
{
	json_t *o =
		json_pack("{s:s, s:s, s:s, s:I, s:I, s:b, s:O?, s:s}", "id", v->id, "name", v->name,
			  "image", v->image ? v->image : "", "mem", (json_int_t)v->mem,
			  "created_wall_ns", (json_int_t)v->created_wall_ns, "from_pool",
			  v->from_pool, "args", v->args, "cmdline", v->cmdline ? v->cmdline : "");
	if (o)
		write_json(d, v, CTL_INFO_NAME, o);
	json_decref(o);
}

/* The VMM could not write its status file (it died): wispd writes it, so
 * the verdict survives a wispd restart too. */
static void write_status(struct wispd *d, struct vmm *v)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "id", v->id, "name", v->name, "state",
			      ctl_state_name(v->state), "exit_status", v->exit_status, "reason",
			      v->reason);
	if (o)
		write_json(d, v, CTL_STATUS_NAME, o);
	json_decref(o);
}

/* Why a child ended, from its wait status. */
static void describe_wait(int ws, char *buf, size_t len)
{
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == WISP_EXIT_SECCOMP)
		snprintf(buf, len,
			 "seccomp: the VMM made a forbidden system call (exit code %d; its log "
			 "names the call)",
			 WISP_EXIT_SECCOMP);
	else if (WIFSIGNALED(ws))
		snprintf(buf, len, "VMM process killed by signal %d (SIG%s)%s", WTERMSIG(ws),
			 sigabbrev_np(WTERMSIG(ws)) ? sigabbrev_np(WTERMSIG(ws)) : "?",
			 WCOREDUMP(ws) ? ", core dumped" : "");
	else
		snprintf(buf, len, "VMM process exited with code %d without reporting",
			 WEXITSTATUS(ws));
}

/* One message from v's VMM. */
static void on_message(struct wispd *d, struct vmm *v, const struct ctl_info *in)
{
	switch (in->type) {
	case CTL_READY:
		v->ready = true;
		if (!v->is_vm)
			pool_shell_ready(d, v);
		break;
	case CTL_FAILED: {
		char why[CTL_REASON_MAX];
		snprintf(why, sizeof(why), "%s", in->reason);
		if (!v->is_vm) {
			pool_shell_failed(d, v, why);
			break;
		}
		if (v->state == CTL_STATE_STARTING) {
			/* The create failed; its reply names the reason. The
			 * VMM exits by itself. */
			struct request *req = pop_pending(d, v);
			if (req)
				api_reply(d, req, v, in, why);
			if (v->cold && !v->ready) {
				struct pool_class *c = pool_class_for(
					d, v->mem, v->cpus ? v->cpus : 1, v->linux_guest);
				if (c)
					snprintf(c->last_error, sizeof(c->last_error), "%s", why);
			}
			fail_pending(d, v, why);
			vmm_close(d, v);
			table_remove(d, v);
			dir_remove(d->vms_fd, v->id);
			v->gone = true;
			wispd_bury(d, v);
			break;
		}
		struct request *req = pop_pending(d, v);
		if (req)
			api_reply(d, req, v, in, why);
		break;
	}
	case CTL_INFO: {
		vmm_apply_info(v, in);
		struct request *req = pop_pending(d, v);
		if (req)
			api_reply(d, req, v, in, NULL);
		break;
	}
	case CTL_EXIT:
		vmm_apply_info(v, in);
		/* Whatever was still asked gets the final state. */
		fail_pending(d, v, NULL);
		break;
	case CTL_STATE:
		vmm_apply_info(v, in); /* unsolicited: answers no request */
		break;
	case CTL_PROGRESS:
		v->mig.state = in->mig_state;
		v->mig.round = in->mig_round;
		v->mig.bytes = in->mig_bytes;
		v->mig.dirty_rate = in->mig_dirty_rate;
		v->mig.total_ns = in->mig_total_ns;
		v->mig.downtime_ns = in->mig_downtime_ns;
		if (in->mig_state == CTL_MIG_FAILED)
			snprintf(v->mig.error, sizeof(v->mig.error), "%s", in->reason);
		break;
	default:
		log_warn(v->id, "unknown message type %u", in->type);
	}
}

void vmm_on_message(struct wispd *d, struct vmm *v, const void *msg, size_t n)
{
	char why[128];
	struct ctl_info in;
	int r = ctl_check_info(msg, n, why, sizeof(why));
	if (!r) {
		memcpy(&in, msg, sizeof(in));
		if (in.type == CTL_READY && v->ready) { /* twice in the pool's list would alias */
			snprintf(why, sizeof(why), "READY again");
			r = -EPROTO;
		}
	}
	if (r) {
		/* Said once per VMM: a VMM must not be able to flood wispd's log. */
		if (!v->bad_messages++)
			log_warn(v->id, "malformed message (ignored, as any later): %s", why);
		return;
	}
	on_message(d, v, &in);
}

/* Read everything waiting on v's connection; false once it has closed. */
static bool drain(struct wispd *d, struct vmm *v)
{
	while (v->fd >= 0) {
		union {
			struct ctl_info info;
			char buf[CTL_MSG_MAX];
		} m;
		ssize_t n = ctl_recv(v->fd, &m, sizeof(m), NULL);
		if (n == -EAGAIN)
			return true;
		/* A VMM that exits with a message of ours unread leaves
		 * ECONNRESET, which recvmsg reports before the messages it
		 * still holds (such as the VMM's last report): read on. */
		if (n == -ECONNRESET)
			continue;
		if (n <= 0)
			return false;
		bool was_vm = v->is_vm;
		vmm_on_message(d, v, &m, (size_t)n);
		if (v->gone || was_vm != v->is_vm)
			return v->fd >= 0;
	}
	return false;
}

void vmm_on_ready(struct wispd *d, struct vmm *v, uint32_t events)
{
	(void)events;
	if (v->gone)
		return;
	if (drain(d, v) || v->gone)
		return;
	/* The connection closed. A child's end comes with its wait status
	 * (SIGCHLD); an adopted VMM's end is all we will learn. */
	vmm_close(d, v);
	if (!v->child)
		vmm_on_gone(d, v, -1);
}

void vmm_on_gone(struct wispd *d, struct vmm *v, int status)
{
	if (v->gone)
		return;
	drain(d, v); /* a last report may still sit in the socket */
	if (v->gone)
		return;
	vmm_close(d, v);
	v->gone = true;
	table_forget_pid(d, v);
	jails_release(d, v);
	char why[CTL_REASON_MAX];
	if (status >= 0)
		describe_wait(status, why, sizeof(why));
	else
		snprintf(why, sizeof(why),
			 "VMM connection closed without a report (its exit status is unknown: "
			 "it was adopted after a wispd restart)");
	if (!v->is_vm) {
		pool_shell_failed(d, v, why);
		return;
	}
	if (v->state == CTL_STATE_STARTING) { /* died while loading: the create fails */
		struct request *req = pop_pending(d, v);
		if (req)
			api_reply(d, req, v, NULL, why);
		fail_pending(d, v, why);
		table_remove(d, v);
		dir_remove(d->vms_fd, v->id);
		wispd_bury(d, v);
		return;
	}
	if (!v->final) {
		v->final = true;
		v->ended_ns = util_now_ns();
		v->state = CTL_STATE_CRASHED;
		v->exit_status = WISP_EXIT_CRASH;
		snprintf(v->reason, sizeof(v->reason), "%s", why);
		write_status(d, v);
		log_error(v->id, "crashed (name '%s'): %s", v->name, why);
	} else if (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == WISP_EXIT_SECCOMP) {
		/* Its seccomp trap told us why (CTL_EXIT) but could not write
		 * the status file: wispd does. */
		write_status(d, v);
		log_error(v->id, "crashed (name '%s'): %s", v->name, v->reason);
	}
	fail_pending(d, v, NULL);
}

void vmm_destroy(struct wispd *d, struct vmm *v)
{
	if (!v->gone && v->pid > 0) {
		/* A child cannot be reaped behind our back, so its pid is safe to
		 * signal; an adopted VMM is told over its own connection. The
		 * kernel's teardown (2-8 ms of SRCU waits) runs in the dying
		 * process, not here. */
		if (v->child)
			kill(v->pid, SIGKILL);
		else if (v->fd >= 0) {
			struct ctl_cmd c = {.type = CTL_DESTROY};
			ctl_send(v->fd, &c, sizeof(c), -1);
		}
	}
	v->gone = true;
	fail_pending(d, v, "the VM was destroyed");
	vmm_close(d, v);
	table_remove(d, v);
	dir_remove(v->is_vm ? d->vms_fd : d->shells_fd, v->id);
	d->destroys += v->is_vm;
	wispd_bury(d, v);
}
