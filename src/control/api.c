/* wispd's HTTP API (docs/api.md): HTTP/1.1 + JSON on a unix socket, served
 * by libmicrohttpd inside wispd's own epoll loop (MHD_USE_EPOLL without an
 * internal thread), so the table needs no locks. A request that needs a
 * VMM's answer (create, pause, resume, stats) is suspended and resumed
 * when the answer arrives; `console?follow=1` streams, suspended while the
 * VM prints nothing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>
#include <wisp/abi.h>

#include "vmm/config.h"
#include "control/wispd.h"
#include "security/security.h"
#include "snapshot/snapshot.h"

#define BODY_MAX (64u << 10)

#ifndef WISP_VERSION
#define WISP_VERSION "dev"
#endif

enum req_kind {
	RQ_OTHER,
	RQ_CREATE,
	RQ_PAUSE,
	RQ_RESUME,
	RQ_STATS,
	RQ_CONSOLE,
	RQ_SAVE,
	RQ_MIGRATE,
	RQ_RECEIVE,
	RQ_METRICS
};

/* One HTTP request, from its first header to its completion. */
struct request {
	struct wispd *d;
	struct MHD_Connection *conn;
	enum req_kind kind;
	uint64_t t0; /* CLOCK_MONOTONIC at arrival */
	char *body;
	size_t len;
	bool too_big;
	bool suspended;
	/* The answer, once known. */
	bool answered;
	unsigned status;
	char *reply;
	size_t reply_len;
	const char *ctype;
	/* Console streaming. */
	char vm_id[CTL_ID_LEN + 1];
	struct ring ring;
	uint64_t pos;
	struct request *next_follower;
	bool following;
	bool client_gone; /* the follower's client hung up */
	char *query;	  /* without MHD (api_request_*): the URL's query, '&' made NUL */
	size_t query_len;
	/* A save: the file wispd opened for the VMM (a jailed VMM opens no
	 * path), named once the VMM has written it; with the client's rights
	 * (save_as_client) when it is outside the snapshot directory. */
	struct snap_target *save;
	unsigned asked; /* GET /metrics: VMs yet to answer */
	bool save_as_client;
	char save_path[CTL_PATH_MAX];
	/* Who asked (SO_PEERCRED), when known. */
	bool peer_known;
	struct sec_creds peer;
};

/* Forget a save's temporary file (the save failed or was not answered),
 * with the rights it was made with. */
static void save_abort(struct request *rq)
{
	if (!rq->save)
		return;
	struct sec_fs_saved as;
	int r = rq->save_as_client ? sec_fs_become(&rq->peer, &as) : 0;
	snap_target_abort(rq->save); /* unlinks the temporary file */
	if (!r && rq->save_as_client)
		sec_fs_restore(&as);
	free(rq->save);
	rq->save = NULL;
}

/* --- building answers --------------------------------------------------------- */

static void answer_text(struct request *rq, unsigned status, char *text, const char *ctype)
{
	free(rq->reply);
	rq->reply = text;
	rq->reply_len = text ? strlen(text) : 0;
	rq->status = status;
	rq->ctype = ctype;
	rq->answered = true;
}

/* Answer with a JSON value (stolen). */
static void answer_json(struct request *rq, unsigned status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		answer_text(rq, 500, strdup("{\"error\":\"out of memory\"}"), "application/json");
		return;
	}
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (t) {
		t[n] = '\n';
		t[n + 1] = 0;
		s = t;
	}
	answer_text(rq, status, s, "application/json");
}

static void answer_error(struct request *rq, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void answer_error(struct request *rq, unsigned status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	answer_json(rq, status, json_pack("{s:s}", "error", msg));
}

static json_int_t ji(uint64_t v)
{
	return (json_int_t)(v > INT64_MAX ? INT64_MAX : v);
}

/* vCPUs of a VM: its configuration's, else 1 (a unikernel). */
static int vm_cpus(const struct vmm *v)
{
	json_t *c = v->config ? json_object_get(v->config, "cpus") : NULL;
	return c ? (int)json_integer_value(c) : 1;
}

/* wispd's view of one VM. */
static json_t *vm_json(const struct vmm *v)
{
	uint64_t up = vmm_uptime_ns(v);
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:i, s:s, s:O?, s:I, s:I, s:b}", "id",
			      v->id, "name", v->name, "state", ctl_state_name(v->state), "pid",
			      v->gone ? 0 : (int)v->pid, "mem", ji(v->mem), "cpus", vm_cpus(v),
			      "image", v->image ? v->image : "", "args", v->args, "created_ns",
			      ji(v->created_wall_ns), "uptime_ms", ji(up / 1000000), "from_pool",
			      v->from_pool);
	if (o && v->final) {
		json_object_set_new(o, "exit_status", json_integer(v->exit_status));
		json_object_set_new(o, "reason", json_string(v->reason));
	}
	if (o && v->receive_at[0])
		json_object_set_new(o, "listen", json_string(v->receive_at));
	if (o && v->config)
		json_object_set(o, "config", v->config);
	return o;
}

static const char *mig_state_name(uint32_t s)
{
	return s == CTL_MIG_RUNNING  ? "running"
	       : s == CTL_MIG_DONE   ? "done"
	       : s == CTL_MIG_FAILED ? "failed"
				     : "none";
}

/* GET /vms/{vm}/migration: the last migration's progress or outcome. */
static json_t *mig_json(const struct vmm *v)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:f, s:f}", "id", v->id, "state",
			      mig_state_name(v->mig.state), "to", v->mig.to, "rounds",
			      (int)v->mig.round, "bytes", ji(v->mig.bytes), "dirty_rate",
			      ji(v->mig.dirty_rate), "total_ms", (double)v->mig.total_ns / 1e6,
			      "downtime_ms", (double)v->mig.downtime_ns / 1e6);
	if (o && v->mig.state == CTL_MIG_FAILED)
		json_object_set_new(o, "error", json_string(v->mig.error));
	return o;
}

/* Add a live VMM's CPU time ("cpu_ns": user + system, all its threads, from
 * /proc/PID/stat) and its read/write bytes ("io": rchar and wchar of
 * /proc/PID/io: disk, TAP, sockets) to o; what cannot be read is left out.
 * `wisp top` turns them into CPU % and I/O per second. */
static void vmm_usage(const struct vmm *v, json_t *o)
{
	if (!o || !vmm_live(v))
		return;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)v->pid);
	FILE *f = fopen(path, "re");
	if (f) {
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		char *p = strrchr(buf, ')'); /* the command name may hold anything */
		unsigned long long ut, st;
		long hz = sysconf(_SC_CLK_TCK);
		if (p && hz > 0 &&
		    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			   &st) == 2)
			json_object_set_new(
				o, "cpu_ns",
				json_integer((json_int_t)((ut + st) *
							  (1000000000ull / (unsigned long)hz))));
	}
	snprintf(path, sizeof(path), "/proc/%d/io", (int)v->pid);
	f = fopen(path, "re");
	if (!f)
		return;
	unsigned long long rd = 0, wr = 0, x;
	int got = 0;
	while (fgets(buf, sizeof(buf), f)) {
		if (sscanf(buf, "rchar: %llu", &x) == 1)
			rd = x, got++;
		else if (sscanf(buf, "wchar: %llu", &x) == 1)
			wr = x, got++;
	}
	fclose(f);
	if (got == 2)
		json_object_set_new(
			o, "io",
			json_pack("{s:I, s:I}", "read_bytes", ji(rd), "write_bytes", ji(wr)));
}

static json_t *stats_json(const struct vmm *v)
{
	const struct exit_stats *e = &v->exits;
	uint64_t rss, pss;
	vmm_memory(v, &rss, &pss);
	json_t *boot = json_pack("{s:s, s:I, s:I, s:I}", "from", v->from_pool ? "pool" : "cold",
				 "request_ns", ji(v->request_ns), "started_ns", ji(v->started_ns),
				 "first_hypercall_ns", ji(v->first_hypercall_ns));
	if (boot && v->request_ns && v->started_ns >= v->request_ns)
		json_object_set_new(boot, "request_to_start_us",
				    json_real((double)(v->started_ns - v->request_ns) / 1e3));
	if (boot && v->request_ns && v->first_hypercall_ns >= v->request_ns)
		json_object_set_new(
			boot, "request_to_first_hypercall_us",
			json_real((double)(v->first_hypercall_ns - v->request_ns) / 1e3));
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
			      "s:{s:I, s:I, s:I}, s:o?, s:o?}",
			      "id", v->id, "name", v->name, "state", ctl_state_name(v->state),
			      "exits", "io", ji(e->io), "mmio", ji(e->mmio), "hypercall",
			      ji(e->hypercall), "hlt", ji(e->hlt), "intr", ji(e->intr), "shutdown",
			      ji(e->shutdown), "unhandled", ji(e->unhandled), "other", ji(e->other),
			      "memory", "guest", ji(v->mem), "vmm_rss", ji(rss), "vmm_pss", ji(pss),
			      "boot", boot, "devices", metrics_devices_json(v));
	vmm_usage(v, o);
	return o;
}

/* --- answers from VMMs ---------------------------------------------------------- */

static void resume(struct request *rq)
{
	if (rq->suspended) {
		rq->suspended = false;
		if (rq->conn)
			MHD_resume_connection(rq->conn);
	}
}

/* Wait for a VMM's answer (api_reply and co. resume). */
static void suspend(struct request *rq)
{
	if (rq->conn)
		MHD_suspend_connection(rq->conn);
	rq->suspended = true;
}

/* Is this failure the image's fault (400) rather than wispd's (500)? */
static bool image_error(int error)
{
	return error == -ENOEXEC || error == -E2BIG || error == -EINVAL;
}

/* GET /metrics: one more VM answered (or could not); the last one renders. */
static void metrics_part(struct wispd *d, struct request *rq)
{
	if (rq->asked && --rq->asked)
		return;
	char *text = metrics_render(d);
	if (text)
		answer_text(rq, 200, text, "text/plain; version=0.0.4; charset=utf-8");
	else
		answer_error(rq, 500, "out of memory");
	resume(rq);
}

void api_reply(struct wispd *d, struct request *rq, struct vmm *v, const struct ctl_info *in,
	       const char *why)
{
	bool ok = in && in->type == CTL_INFO;
	if (rq->kind == RQ_METRICS) {
		metrics_part(d, rq);
		return;
	}
	switch (rq->kind) {
	case RQ_RECEIVE:
	case RQ_CREATE:
		d->creating--;
		if (ok) {
			d->creates++;
			if (v->from_pool)
				d->creates_pool++;
			else
				d->creates_cold++;
			v->info_due = true; /* written after the reply goes out */
			v->next_due = d->info_due;
			d->info_due = v;
			json_t *j = vm_json(v);
			if (j && v->snapshot) /* the VMM's own time: open to ready */
				json_object_set_new(j, "restore_ms",
						    json_real((double)in->op_total_ns / 1e6));
			answer_json(rq, 201, j);
		} else {
			d->create_errors++;
			if (in && in->type == CTL_FAILED && image_error(in->error))
				answer_error(rq, 400, "%s '%s': %s",
					     v->snapshot ? "snapshot" : "image", v->image, why);
			else if (in && in->type == CTL_FAILED &&
				 (in->error == -EPROTO || in->error == -ENODATA ||
				  in->error == -EOPNOTSUPP))
				answer_error(rq, 400, "snapshot '%s': %s", v->image, why);
			else
				answer_error(rq, 500, "cannot create the VM: %s",
					     why ? why : "its VMM stopped");
		}
		break;
	case RQ_PAUSE:
	case RQ_RESUME:
		if (ok)
			answer_json(rq, 200, vm_json(v));
		else if (v->final)
			answer_error(rq, 409, "VM '%s' has %s", v->name, ctl_state_name(v->state));
		else
			answer_error(rq, 500, "VM '%s': %s", v->name, why ? why : "no answer");
		break;
	case RQ_STATS:
		if (ok || v->final)
			answer_json(rq, 200, stats_json(v));
		else
			answer_error(rq, 500, "VM '%s': %s", v->name, why ? why : "no answer");
		break;
	case RQ_SAVE:
		if (ok && rq->save) {
			char err[WISP_ERRLEN];
			struct sec_fs_saved as;
			int r = rq->save_as_client ? sec_fs_become(&rq->peer, &as) : 0;
			if (!r)
				r = snap_target_commit(rq->save, NULL, NULL, err, sizeof(err));
			else
				snprintf(err, sizeof(err), "cannot act as uid %u: %s",
					 (unsigned)rq->peer.uid, strerror(-r));
			if (rq->save_as_client)
				sec_fs_restore(&as);
			free(rq->save);
			rq->save = NULL;
			if (r) {
				answer_error(rq, 500, "cannot save VM '%s': %s", v->name, err);
				break;
			}
		}
		save_abort(rq);
		if (ok)
			answer_json(rq, 200,
				    json_pack("{s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:I}", "id",
					      v->id, "name", v->name, "file", rq->save_path,
					      "total_ms", (double)in->op_total_ns / 1e6, "state_ms",
					      (double)in->op_state_ns / 1e6, "memory_ms",
					      (double)in->op_memory_ns / 1e6, "sync_ms",
					      (double)in->op_sync_ns / 1e6, "memory_bytes",
					      ji(in->op_bytes)));
		else if (in && in->type == CTL_FAILED)
			answer_error(rq,
				     image_error(in->error) || in->error == -ENOENT ||
						     in->error == -EACCES || in->error == -EISDIR ||
						     in->error == -ENOTSUP
					     ? 400
					     : 500,
				     "cannot save VM '%s': %s", v->name, why);
		else if (v->final)
			answer_error(rq, 409, "VM '%s' has %s", v->name, ctl_state_name(v->state));
		else
			answer_error(rq, 500, "VM '%s': %s", v->name, why ? why : "no answer");
		break;
	case RQ_MIGRATE:
		if (ok) {
			answer_json(rq, 202, mig_json(v));
		} else {
			if (in && in->type == CTL_FAILED) {
				v->mig.state = CTL_MIG_FAILED;
				snprintf(v->mig.error, sizeof(v->mig.error), "%s", why);
			}
			answer_error(rq, in ? 409 : 500, "cannot migrate VM '%s': %s", v->name,
				     why ? why : "its VMM stopped");
		}
		break;
	default:
		answer_error(rq, 500, "internal error: unexpected reply");
	}
	resume(rq);
}

void api_timeout(struct wispd *d, struct request *rq, struct vmm *v)
{
	if (rq->kind == RQ_METRICS) { /* what wispd knows will do */
		metrics_part(d, rq);
		return;
	}
	save_abort(rq);
	if (rq->kind == RQ_CREATE || rq->kind == RQ_RECEIVE) {
		d->creating--;
		d->create_errors++;
	}
	answer_error(rq, 504, "VM '%s': its VMM (pid %d) did not answer within %llu ms", v->name,
		     (int)v->pid, (unsigned long long)d->cfg.answer_timeout_ms);
	resume(rq);
}

void api_abandon(struct request *rq)
{
	if (rq->kind == RQ_METRICS) {
		metrics_part(rq->d, rq);
		return;
	}
	save_abort(rq);
	answer_error(rq, 503, "wispd is stopping");
	resume(rq);
}

/* --- console ---------------------------------------------------------------------- */

static bool follow_over(struct wispd *d, struct request *rq)
{
	struct vmm *v = table_find(d, rq->vm_id);
	return !v || !vmm_live(v) || d->stopping;
}

static ssize_t console_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct request *rq = cls;
	(void)pos;
	if (rq->client_gone)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t n = ring_read(&rq->ring, &rq->pos, buf, max, NULL);
	if (n)
		return (ssize_t)n;
	if (follow_over(rq->d, rq))
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing yet: sleep until the timer sees the ring move. */
	suspend(rq);
	if (!rq->following) {
		rq->following = true;
		rq->next_follower = rq->d->followers;
		rq->d->followers = rq;
		wispd_update_timer(rq->d);
	}
	return 0;
}

static void unfollow(struct wispd *d, struct request *rq)
{
	if (!rq->following)
		return;
	struct request **p = &d->followers;
	while (*p && *p != rq)
		p = &(*p)->next_follower;
	if (*p)
		*p = rq->next_follower;
	rq->following = false;
	wispd_update_timer(d);
}

/* A suspended connection is out of MHD's sight: see for ourselves whether
 * a follower's client has hung up, or it would wait for ever. */
static bool client_hung_up(struct request *rq)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return false;
	struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

void api_poll_followers(struct wispd *d)
{
	struct request *rq = d->followers;
	while (rq) {
		struct request *next = rq->next_follower;
		if (rq->suspended && client_hung_up(rq))
			rq->client_gone = true;
		if (rq->suspended &&
		    (rq->client_gone || ring_head(&rq->ring) != rq->pos || follow_over(d, rq)))
			resume(rq);
		rq = next;
	}
}

/* The value of the URL's query argument `name`, or NULL. */
static const char *query_arg(struct request *rq, const char *name)
{
	if (rq->conn)
		return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
	size_t n = strlen(name);
	for (size_t i = 0; i < rq->query_len; i += strlen(rq->query + i) + 1)
		if (!strncmp(rq->query + i, name, n) &&
		    (rq->query[i + n] == '=' || rq->query[i + n] == 0))
			return rq->query[i + n] ? rq->query + i + n + 1 : "";
	return NULL;
}

static void handle_console(struct request *rq, struct vmm *v)
{
	struct wispd *d = rq->d;
	const char *off = query_arg(rq, "offset"), *follow = query_arg(rq, "follow");
	uint64_t pos = 0;
	if (off && opt_parse_uint(off, 0, UINT64_MAX, &pos)) {
		answer_error(rq, 400, "offset '%s': not a number", off);
		return;
	}
	char path[64];
	snprintf(path, sizeof(path), "%s/%s", v->id, CTL_CONSOLE_NAME);
	int r = ring_open(d->vms_fd, path, &rq->ring);
	if (r) {
		answer_error(rq, 404, "VM '%s' has no console: %s", v->name, strerror(-r));
		return;
	}
	rq->pos = pos;
	snprintf(rq->vm_id, sizeof(rq->vm_id), "%s", v->id);
	rq->kind = RQ_CONSOLE;
	if (follow && strcmp(follow, "0") && strcmp(follow, "false")) {
		rq->answered = true;
		rq->status = 200;
		return; /* handle() builds the streaming response */
	}
	uint64_t head = ring_head(&rq->ring);
	size_t cap =
		head > pos ? (size_t)(head - pos < rq->ring.size ? head - pos : rq->ring.size) : 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		answer_error(rq, 500, "out of memory");
		return;
	}
	uint64_t lost = 0;
	size_t n = ring_read(&rq->ring, &rq->pos, buf, cap, &lost);
	buf[n] = 0;
	answer_text(rq, 200, buf, "text/plain; charset=utf-8");
	rq->reply_len = n; /* console output may hold NUL bytes */
	(void)lost;
}

/* --- routes -------------------------------------------------------------------------- */

/* A JSON member that must be a string (or absent). */
static int get_string(struct request *rq, json_t *o, const char *key, const char **out)
{
	json_t *j = json_object_get(o, key);
	*out = NULL;
	if (!j)
		return 0;
	if (!json_is_string(j)) {
		answer_error(rq, 400, "'%s' must be a string", key);
		return -1;
	}
	*out = json_string_value(j);
	return 0;
}

/* Parse and check "mem": a size string like the CLI's --mem, or bytes (the
 * configuration's one memory check, vmm/config.h). */
static int get_mem(struct request *rq, json_t *o, uint64_t *mem)
{
	json_t *j = json_object_get(o, "mem");
	*mem = WISP_DEFAULT_MEM;
	if (!j)
		return 0;
	char why[WISP_ERRLEN], shown[32];
	struct vm_config c;
	vm_config_init(&c);
	int r;
	if (json_is_string(j)) {
		r = vm_config_set_mem(&c, json_string_value(j), "mem", why, sizeof(why));
		*mem = c.mem;
	} else if (json_is_integer(j) && json_integer_value(j) > 0) {
		*mem = (uint64_t)json_integer_value(j);
		snprintf(shown, sizeof(shown), "%llu", (unsigned long long)*mem);
		r = vm_check_mem(*mem, "mem", shown, why, sizeof(why));
	} else {
		r = snprintf(why, sizeof(why),
			     "'mem' must be a size string (e.g. \"64M\") or bytes");
	}
	if (r)
		answer_error(rq, 400, "%s", why);
	return r ? -1 : 0;
}

/* The request's VM configuration (docs/config.md) besides the request's
 * own keys; 0 and the configuration as JSON with its defaults in *out, or
 * -1 (answered). *built: it needs more than a prepared unikernel shell (a
 * Linux guest, devices, several vCPUs), so the VMM builds it cold from the
 * JSON, which must then fit the configuration message. */
static int get_config(struct request *rq, json_t *o, json_t **out, bool *built,
		      struct jail_limits *lim, bool *lim_asked)
{
	static const char *const request_keys[] = {"snapshot", "verify", "port", NULL};
	struct vm_config c;
	char why[WISP_ERRLEN];
	if (vm_config_from_jobj(o, request_keys, &c, why, sizeof(why))) {
		answer_error(rq, 400, "%s", why);
		return -1;
	}
	int r = 0;
	*built = c.kind == VM_KIND_LINUX || c.ndev || c.cpus > 1;
	*lim_asked = vm_config_limits(&c, lim);
	/* wispd does not know the client's working directory */
	const char *rel = c.kernel && c.kernel[0] != '/'   ? "kernel"
			  : c.initrd && c.initrd[0] != '/' ? "initrd"
							   : NULL;
	for (int i = 0; !rel && i < c.ndev; i++)
		if (c.dev[i].path && c.dev[i].path[0] != '/')
			rel = "a device's path";
	char *text = NULL;
	if (rel) {
		answer_error(rq, 400,
			     "%s: must be an absolute path (wispd does not know the "
			     "client's working directory)",
			     rel);
		r = -1;
	} else if (!(*out = vm_config_to_jobj(&c)) ||
		   !(text = json_dumps(*out, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		answer_error(rq, 500, "out of memory");
		r = -1;
	} else if (*built && strlen(text) >= CTL_CMDLINE_MAX) {
		answer_error(rq, 400,
			     "configuration too long for a daemon VM (%zu bytes, at most %d)",
			     strlen(text), CTL_CMDLINE_MAX - 1);
		r = -1;
	}
	free(text);
	vm_config_free(&c);
	return r;
}
/* Join the "args" array into a command line; NULL (answered) on error. */
static char *get_cmdline(struct request *rq, json_t *args)
{
	if (args && !json_is_array(args)) {
		answer_error(rq, 400, "'args' must be an array of strings");
		return NULL;
	}
	size_t n = args ? json_array_size(args) : 0;
	char **argv = calloc(n + 1, sizeof(char *));
	if (!argv) {
		answer_error(rq, 500, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *a = json_array_get(args, i);
		if (!json_is_string(a)) {
			free(argv);
			answer_error(rq, 400, "'args' must be an array of strings");
			return NULL;
		}
		argv[i] = (char *)json_string_value(a);
	}
	char *cmdline = opt_join_args((int)n, argv);
	free(argv);
	if (!cmdline) {
		answer_error(rq, 500, "out of memory");
		return NULL;
	}
	size_t max = WISP_BOOTINFO_SIZE - 256 - 1;
	if (strlen(cmdline) > max) {
		answer_error(rq, 400, "command line too long (%zu bytes, at most %zu)",
			     strlen(cmdline), max);
		free(cmdline);
		return NULL;
	}
	return cmdline;
}

/* Open the image for the VMM; -1 (answered) on error. */
static int open_image(struct request *rq, const char *image)
{
	if (image[0] != '/') {
		answer_error(rq, 400,
			     "image '%s': must be an absolute path (wispd does not know the "
			     "client's working directory)",
			     image);
		return -1;
	}
	int fd = sec_open_client_file(image); /* a FIFO must not block wispd */
	struct stat st;
	const char *why = NULL;
	if (fd < 0)
		why = fd == -EINVAL ? "not a regular file" : strerror(-fd);
	else if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (S_ISDIR(st.st_mode))
		why = strerror(EISDIR);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_size == 0)
		why = "file is empty";
	if (why) {
		answer_error(rq, 400, "image '%s': %s", image, why);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* A snapshot file a client names: an absolute path, or a plain name (no
 * '/') in wispd's snapshot directory, into buf; NULL after answering 400. */
static const char *snapshot_file(struct request *rq, const char *what, const char *name, char *buf,
				 size_t len)
{
	const char *dir = rq->d->cfg.snapshot_dir;
	bool plain = name && *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
	if (name && name[0] == '/') {
		snprintf(buf, len, "%s", name);
	} else if (!plain || (size_t)snprintf(buf, len, "%s/%s", dir, name) >= len) {
		answer_error(rq, 400,
			     "%s '%s': must be an absolute path or a plain name (in the snapshot "
			     "directory %s)",
			     what, name ? name : "", dir);
		return NULL;
	}
	if (strlen(buf) >= CTL_PATH_MAX) {
		answer_error(rq, 400, "%s: path longer than %d bytes", what, CTL_PATH_MAX - 1);
		return NULL;
	}
	return buf;
}

/* Is path a file right in the snapshot directory (its last '/' ends the
 * directory's name)? */
static bool in_snapshot_dir(struct wispd *d, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = strlen(d->cfg.snapshot_dir);
	return slash && (size_t)(slash - path) == n && !strncmp(path, d->cfg.snapshot_dir, n) &&
	       slash[1] && strcmp(slash + 1, ".") && strcmp(slash + 1, "..");
}

/* A restore of a VM built from a configuration: the recorded one with the
 * host side of each device as the request gives it again ("devices"),
 * checked against the record (one line per mismatch), and for a clone
 * ("clone": true) a MAC and CID of its own; *config is the merged
 * configuration. -1 (answered) on error. */
static int restore_config(struct request *rq, json_t *o, const char *path, struct vm_config *rec,
			  json_t **config)
{
	json_t *devs = json_object_get(o, "devices"), *clone = json_object_get(o, "clone");
	char err[4 * WISP_ERRLEN], why[WISP_ERRLEN];
	struct vm_config given;
	int r = -1;
	vm_config_init(&given);
	if (devs && vm_config_devices_from_jobj(devs, &given, why, sizeof(why))) {
		answer_error(rq, 400, "%s", why);
		goto out;
	}
	for (int i = 0; i < given.ndev; i++) {
		struct vm_dev_config *d = &given.dev[i];
		struct stat st;
		if (d->path && d->path[0] != '/') {
			answer_error(rq, 400,
				     "devices[%d]: '%s' must be an absolute path (wispd does not "
				     "know the client's working directory)",
				     i, d->path);
			goto out;
		}
		if (d->kind != VM_DEV_BLK)
			continue;
		if (stat(d->path, &st) < 0) {
			answer_error(rq, 400, "devices[%d]: disk '%s': %s", i, d->path,
				     strerror(errno));
			goto out;
		}
		d->size = (uint64_t)st.st_size;
	}
	if (vm_config_take_host_sides(rec, &given, err, sizeof(err))) {
		/* one line per mismatch, each naming the snapshot */
		char msg[6 * WISP_ERRLEN];
		size_t off = 0;
		for (char *line = strtok(err, "\n"); line && off < sizeof(msg);
		     line = strtok(NULL, "\n"))
			off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%ssnapshot '%s': %s",
						off ? "\n" : "", path, line);
		answer_error(rq, 400, "%s", msg);
		goto out;
	}
	vm_config_take_identity(rec, &given, json_is_true(clone));
	char *text = NULL;
	if (!(*config = vm_config_to_jobj(rec)) ||
	    !(text = json_dumps(*config, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		answer_error(rq, 500, "out of memory");
	} else if (strlen(text) >= CTL_CMDLINE_MAX) {
		answer_error(rq, 400,
			     "snapshot '%s': its configuration is too long for a daemon VM (%zu "
			     "bytes, at most %d)",
			     path, strlen(text), CTL_CMDLINE_MAX - 1);
	} else {
		r = 0;
	}
	free(text);
out:
	vm_config_free(&given);
	return r;
}

/* Open a snapshot for a restore and learn its memory size from its
 * header, and for a VM built from a configuration that configuration
 * (restore_config) in *config; -1 (answered) if it is missing or not a
 * snapshot we can read. */
static int open_snapshot(struct request *rq, json_t *o, const char *path, uint64_t *mem,
			 json_t **config)
{
	if (path[0] != '/') {
		answer_error(rq, 400,
			     "snapshot '%s': must be an absolute path (wispd does not know the "
			     "client's working directory)",
			     path);
		return -1;
	}
	json_t *devs = json_object_get(o, "devices"), *clone = json_object_get(o, "clone");
	if (clone && !json_is_boolean(clone)) {
		answer_error(rq, 400, "'clone' must be true or false");
		return -1;
	}
	struct snap_file f;
	struct vm_config rec;
	char err[WISP_ERRLEN];
	int r = snap_open(path, &f, err, sizeof(err));
	if (!r && (r = snap_config_record(&f, &rec, err, sizeof(err))) == -ENOENT) {
		r = 0; /* an older daemon VM's snapshot: no devices */
		if (devs && (!json_is_array(devs) || json_array_size(devs))) {
			snprintf(err, sizeof(err), "its VM has no devices: give no 'devices'");
			r = -EINVAL;
		}
	} else if (!r) {
		r = restore_config(rq, o, path, &rec, config);
		vm_config_free(&rec);
		if (r) {
			snap_close(&f);
			return -1;
		}
	}
	if (r) {
		answer_error(rq, 400, "snapshot '%s': %s", path, err);
		snap_close(&f);
		return -1;
	}
	*mem = f.hdr.mem_size;
	int fd = f.fd;
	f.fd = -1; /* kept for the VMM */
	snap_close(&f);
	return fd;
}

/* A receive of a VM built from a configuration ("kind", "cpus" > 1 or
 * "devices" given): {"kind", "cpus", "devices"} for its VMM in *config
 * (NULL for a plain unikernel); -1 (answered) on error. The devices are
 * their host sides (the source's configuration gives the guest's side). */
static int receive_config(struct request *rq, json_t *o, json_t **config)
{
	json_t *kind = json_object_get(o, "kind"), *cpus = json_object_get(o, "cpus");
	json_t *devs = json_object_get(o, "devices");
	*config = NULL;
	if (!kind && !devs && (!cpus || json_integer_value(cpus) == 1))
		return 0;
	const char *k = kind ? json_string_value(kind) : "linux";
	if (!k || (strcmp(k, "linux") && strcmp(k, "unikernel"))) {
		answer_error(rq, 400, "kind: must be \"unikernel\" or \"linux\"");
		return -1;
	}
	json_int_t n = cpus ? json_integer_value(cpus) : 1;
	if ((cpus && !json_is_integer(cpus)) || n < 1 || n > WISP_MAX_VCPUS) {
		answer_error(rq, 400, "cpus: must be a number from 1 to %d", WISP_MAX_VCPUS);
		return -1;
	}
	struct vm_config given;
	char why[WISP_ERRLEN];
	vm_config_init(&given);
	if (devs && vm_config_devices_from_jobj(devs, &given, why, sizeof(why))) {
		answer_error(rq, 400, "%s", why);
		vm_config_free(&given);
		return -1;
	}
	for (int i = 0; i < given.ndev; i++)
		if (given.dev[i].path && given.dev[i].path[0] != '/') {
			answer_error(rq, 400,
				     "devices[%d]: '%s' must be an absolute path (wispd does not "
				     "know the client's working directory)",
				     i, given.dev[i].path);
			vm_config_free(&given);
			return -1;
		}
	vm_config_free(&given);
	*config = json_pack("{s:s, s:I, s:o}", "kind", k, "cpus", n, "devices",
			    devs ? json_incref(devs) : json_array());
	char *text = *config ? json_dumps(*config, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;
	free(text);
	if (!*config || len >= CTL_CMDLINE_MAX) {
		answer_error(rq, 400, "the receive request's devices are too long");
		return -1;
	}
	return 0;
}

/* The request's body as a JSON object, or NULL after answering 400. */
static json_t *body_object(struct request *rq)
{
	json_error_t je;
	json_t *o = json_loadb(rq->body ? rq->body : "", rq->len, 0, &je);
	if (!o || !json_is_object(o)) {
		answer_error(rq, 400, "request body: %s", o ? "must be a JSON object" : je.text);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A migration's transport from the request: "psk_file" (+ "psk_identity"),
 * or "ca", "cert" and "key" (+ "server_name" for a sender), or "transport":
 * "cleartext" by name. Nothing given is an error, never cleartext. */
static int get_creds(struct request *rq, json_t *o, bool sender, struct mig_creds *c)
{
	const char *transport;
	memset(c, 0, sizeof(*c));
	if (get_string(rq, o, "transport", &transport) ||
	    get_string(rq, o, "psk_file", &c->psk_file) ||
	    get_string(rq, o, "psk_identity", &c->psk_identity) ||
	    get_string(rq, o, "ca", &c->ca) || get_string(rq, o, "cert", &c->cert) ||
	    get_string(rq, o, "key", &c->key) || get_string(rq, o, "server_name", &c->server_name))
		return -1;
	bool x509 = c->ca || c->cert || c->key;
	if (transport && strcmp(transport, "tls") && strcmp(transport, "cleartext")) {
		answer_error(rq, 400, "'transport' must be \"tls\" or \"cleartext\", not '%s'",
			     transport);
		return -1;
	}
	if (transport && !strcmp(transport, "cleartext")) {
		if (c->psk_file || x509) {
			answer_error(rq, 400,
				     "'transport': 'cleartext' takes no key or certificate");
			return -1;
		}
		c->cleartext = true;
		return 0;
	}
	if (c->psk_file && x509) {
		answer_error(rq, 400, "give a key file ('psk_file') or certificates, not both");
		return -1;
	}
	if (!c->psk_file && !x509) {
		answer_error(rq, 400,
			     "the migration is authenticated: give 'psk_file', or 'ca', 'cert' and "
			     "'key' (or \"transport\": \"cleartext\" on a network you trust)");
		return -1;
	}
	if (x509 && (!c->ca || !c->cert || !c->key)) {
		answer_error(rq, 400, "certificates need all of 'ca', 'cert' and 'key'");
		return -1;
	}
	if (c->server_name && !sender) {
		answer_error(rq, 400, "'server_name' is for the sender");
		return -1;
	}
	const char *paths[][2] = {
		{"psk_file", c->psk_file}, {"ca", c->ca}, {"cert", c->cert}, {"key", c->key}};
	for (int i = 0; i < 4; i++) {
		if (paths[i][1] && (paths[i][1][0] != '/' || strlen(paths[i][1]) >= CTL_PATH_MAX)) {
			answer_error(rq, 400, "'%s' must be an absolute path", paths[i][0]);
			return -1;
		}
	}
	if (c->psk_identity && (!c->psk_identity[0] || strlen(c->psk_identity) > 64)) {
		answer_error(rq, 400, "'psk_identity': 1 to 64 characters");
		return -1;
	}
	return 0;
}

/* "listen" of a receive: a numeric ADDRESS:PORT, never all addresses. */
static int get_listen(struct request *rq, json_t *o, const char **out)
{
	char why[200];
	struct sockaddr_storage ss;
	unsigned sl;
	if (json_object_get(o, "port")) {
		answer_error(rq, 400,
			     "'port' is gone: give the address to listen on, 'listen': "
			     "\"ADDRESS:PORT\"");
		return -1;
	}
	if (get_string(rq, o, "listen", out))
		return -1;
	if (!*out) {
		answer_error(rq, 400, "'listen' is required: the ADDRESS:PORT to listen on");
		return -1;
	}
	if (mig_parse_addr(*out, &ss, &sl, why, sizeof(why))) {
		answer_error(rq, 400, "'listen': %s", why);
		return -1;
	}
	bool any = ss.ss_family == AF_INET
			   ? ((struct sockaddr_in *)&ss)->sin_addr.s_addr == htonl(INADDR_ANY)
			   : IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr);
	if (any) {
		answer_error(rq, 400, "'listen': %s is every address: give one of this host's",
			     *out);
		return -1;
	}
	return 0;
}

/* A create or receive request as it is checked and carried out. */
struct create {
	json_t *o; /* the request's body */
	bool receive;
	const char *image, *name, *snapshot;
	char snap_buf[CTL_PATH_MAX];
	uint64_t mem;
	json_t *cpus, *verify;
	const char *listen_at;
	struct mig_creds creds;
	uint64_t recv_timeout_ms;
	int chan; /* a receiver's transport */
	char *cmdline;
	json_t *config;		/* what GET /vms/{vm} gives back */
	bool built;		/* made by the VMM's builder from config (cold) */
	struct jail_limits lim; /* its cgroup's limits (the jail) */
	bool lim_asked;		/* ... set by its configuration */
	int fd;			/* the image or snapshot file */
};

/* A receive's own fields: where it listens, its transport, size and timeout. */
static int read_receive_fields(struct request *rq, struct create *c)
{
	json_t *t = json_object_get(c->o, "timeout");
	if (get_listen(rq, c->o, &c->listen_at) || get_creds(rq, c->o, false, &c->creds))
		return -1;
	if (!json_object_get(c->o, "mem")) {
		answer_error(rq, 400,
			     "'mem' is required: the receiver's memory size, which the "
			     "VM sent must have");
		return -1;
	}
	if (t &&
	    (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 86400)) {
		answer_error(rq, 400, "'timeout' must be a number of seconds from 1 to 86400");
		return -1;
	}
	if (t)
		c->recv_timeout_ms = (uint64_t)json_integer_value(t) * 1000;
	if (c->image || c->snapshot) {
		answer_error(rq, 400, "a VM that receives a migration takes no image");
		return -1;
	}
	if (receive_config(rq, c->o, &c->config))
		return -1;
	c->built = c->config != NULL;
	return 0;
}

/* The request's fields: common ones, then a receive's or a Linux guest's. */
static int read_create_fields(struct request *rq, struct create *c)
{
	json_t *o = c->o;
	c->cpus = json_object_get(o, "cpus");
	c->verify = json_object_get(o, "verify");
	if (get_string(rq, o, "image", &c->image) || get_string(rq, o, "name", &c->name) ||
	    get_string(rq, o, "snapshot", &c->snapshot) || get_mem(rq, o, &c->mem))
		return -1;
	if (c->receive)
		return read_receive_fields(rq, c);
	if (!c->image && !c->snapshot &&
	    (json_object_get(o, "kernel") || json_object_get(o, "kind"))) {
		/* A Linux guest: the kernel is the file wispd checks first. */
		if (get_config(rq, o, &c->config, &c->built, &c->lim, &c->lim_asked))
			return -1;
		c->image = json_string_value(json_object_get(c->config, "kernel"));
	}
	return 0;
}

/* What to run, its vCPUs and whether to verify it. */
static int check_create_source(struct request *rq, const struct create *c)
{
	if (!c->image && !c->snapshot && !c->receive) {
		answer_error(rq, 400, "no image given ('image' or 'snapshot' is required)");
		return -1;
	} else if (c->image && c->snapshot) {
		answer_error(rq, 400, "give 'image' or 'snapshot', not both");
		return -1;
	}
	if (c->verify && !json_is_boolean(c->verify)) {
		answer_error(rq, 400, "'verify' must be true or false");
		return -1;
	}
	json_t *cpus = c->cpus;
	if (cpus && (!json_is_integer(cpus) || json_integer_value(cpus) < 1 ||
		     json_integer_value(cpus) > WISP_MAX_VCPUS)) {
		answer_error(rq, 400, "cpus: must be a number from 1 to %d", WISP_MAX_VCPUS);
		return -1;
	}
	if (cpus && json_integer_value(cpus) != 1 && !c->built) {
		answer_error(rq, 400,
			     "image '%s': unikernels run on exactly 1 vCPU (cpus %d given)",
			     c->image ? c->image : "", (int)json_integer_value(cpus));
		return -1;
	}
	return 0;
}

/* The VM's name: valid, not an id, and not taken. */
static int check_create_name(struct request *rq, const struct create *c)
{
	const char *name = c->name;
	if (name && (!ctl_valid_name(name) || ctl_valid_id(name))) {
		answer_error(rq, 400,
			     "name '%s': use 1 to %d letters, digits, '_', '.' or '-', starting "
			     "with a letter or digit, and not 12 hex digits (that is an id)",
			     name, CTL_NAME_MAX);
		return -1;
	}
	if (name && table_find(rq->d, name)) {
		answer_error(rq, 409, "a VM named '%s' already exists", name);
		return -1;
	}
	return 0;
}

/* Open the snapshot (which gives the memory size and configuration) or
 * the image (after reading its configuration) into c->fd. */
static int open_create_source(struct request *rq, struct create *c)
{
	json_t *o = c->o;
	if (c->snapshot) {
		if (json_object_get(o, "mem") || json_object_get(o, "args")) {
			answer_error(rq, 400,
				     "a restore takes its memory size and arguments from "
				     "the snapshot");
			return -1;
		}
		if (!(c->snapshot = snapshot_file(rq, "snapshot", c->snapshot, c->snap_buf,
						  sizeof(c->snap_buf))) ||
		    (c->fd = open_snapshot(rq, o, c->snapshot, &c->mem, &c->config)) < 0)
			return -1;
		c->built = c->config != NULL;
		c->image = c->snapshot;
	} else if (c->image && ((!c->config && get_config(rq, o, &c->config, &c->built, &c->lim,
							  &c->lim_asked)) ||
				(c->fd = open_image(rq, c->image)) < 0)) {
		return -1;
	}
	return 0;
}

/* The VM's cgroup limits: refused when asked for where there is no jail. */
static int check_create_limits(struct request *rq, struct create *c)
{
	struct wispd *d = rq->d;
	/* A restore or a receiver built from a configuration: the default
	 * limits for its size (its configuration's own limits are not in the
	 * request). */
	if (c->config && (c->snapshot || c->receive))
		jail_limits_default(
			&c->lim, c->mem,
			(unsigned)json_integer_value(json_object_get(c->config, "cpus")));
	char lerr[CTL_REASON_MAX];
	if (c->lim_asked && (!d->jail || !d->cgroups)) {
		jails_set_limits(d, NULL, &c->lim, true, lerr, sizeof(lerr));
		answer_error(rq, 400, "%s", lerr);
		return -1;
	}
	return 0;
}

/* The VM's VMM: a prepared shell of its exact class if there is one, else
 * a new one; NULL after answering 500. */
static struct vmm *get_create_vmm(struct request *rq, struct create *c)
{
	struct wispd *d = rq->d;
	/* The split toolstack: a unikernel without devices (or its restore)
	 * takes a unikernel shell of its size; a Linux guest a Linux shell of
	 * its size and vCPUs. A receiver starts cold, with its transport; so
	 * do restores built from a configuration and unikernels with devices
	 * or vCPUs. */
	const char *kind = c->config ? json_string_value(json_object_get(c->config, "kind")) : NULL;
	bool lx = c->built && kind && !strcmp(kind, "linux");
	json_int_t ncpus = c->config ? json_integer_value(json_object_get(c->config, "cpus")) : 1;
	ncpus = ncpus < 1 ? 1 : ncpus;
	struct vmm *v = c->receive || (c->built && (c->snapshot || !lx))
				? NULL
				: pool_take(d, c->mem, (unsigned)ncpus, lx);
	if (v) {
		v->from_pool = true;
		v->cpus = (unsigned)ncpus;
		v->linux_guest = lx;
		return v;
	}
	char err[CTL_REASON_MAX];
	if (c->receive && (c->chan = transport_spawn(d, "--listen", c->listen_at, &c->creds,
						     c->recv_timeout_ms, err, sizeof(err))) < 0) {
		answer_error(rq, 500, "cannot create the VM: %s", err);
		return NULL;
	}
	v = pool_spawn(d, NULL, c->mem, c->chan, c->recv_timeout_ms, err, sizeof(err));
	if (!v) {
		d->create_errors++;
		answer_error(rq, 500, "cannot create the VM: %s", err);
		return NULL;
	}
	v->from_pool = false;
	v->cpus = (unsigned)ncpus;
	v->linux_guest = lx;
	return v;
}

/* Limit v, give it what the request says (the command line and the
 * configuration move to it) and enter it in the table. */
static void fill_create_vmm(struct request *rq, struct create *c, struct vmm *v)
{
	struct wispd *d = rq->d;
	char lerr[CTL_REASON_MAX];
	/* Its own limits, before it runs a guest instruction. */
	if (c->config && jails_set_limits(d, v, &c->lim, c->lim_asked, lerr, sizeof(lerr)))
		log_warn(v->id, "%s", lerr);
	snprintf(v->name, sizeof(v->name), "%s", c->name ? c->name : v->id);
	v->image = strdup(c->receive ? "" : c->image);
	v->snapshot = c->snapshot != NULL;
	v->cmdline = c->cmdline;
	c->cmdline = NULL;
	v->args = json_incref(json_object_get(c->o, "args"));
	v->config = c->config;
	c->config = NULL;
	v->state = CTL_STATE_STARTING;
	v->request_ns = rq->t0;
	if (c->receive)
		snprintf(v->receive_at, sizeof(v->receive_at), "%s", c->listen_at);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	v->created_wall_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	table_add_vm(d, v);
}

/* Queue rq on a receiver and send it what it builds before it takes a
 * source (always sent). */
static int send_receiver_config(struct request *rq, struct vmm *v)
{
	struct wispd *d = rq->d;
	int r = vmm_queue(d, v, rq); /* the VMM says when it listens */
	if (r)
		return r;
	struct ctl_config c = {.type = CTL_CONFIG, .flags = v->config ? CTL_FLAG_VMCONFIG : 0};
	char *json = v->config ? json_dumps(v->config, JSON_COMPACT) : NULL;
	snprintf(c.cmdline, sizeof(c.cmdline), "%s", json ? json : "");
	free(json);
	if ((r = ctl_send(v->fd, &c, sizeof(c), -1)))
		vmm_unqueue(d, v, rq);
	return r;
}

/* Queue rq on v and send it its configuration, with the image or
 * snapshot file. */
static int send_create_config(struct request *rq, const struct create *cr, struct vmm *v)
{
	struct wispd *d = rq->d;
	struct ctl_config c = {.type = CTL_CONFIG,
			       .flags = (v->from_pool ? CTL_FLAG_FROM_POOL : 0) |
					(cr->snapshot ? CTL_FLAG_RESTORE : 0) |
					(json_is_true(cr->verify) ? CTL_FLAG_VERIFY : 0) |
					(cr->built ? CTL_FLAG_VMCONFIG : 0),
			       .created_wall_ns = v->created_wall_ns,
			       .request_ns = v->request_ns};
	snprintf(c.name, sizeof(c.name), "%s", v->name);
	char *json = cr->built ? json_dumps(v->config, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	snprintf(c.cmdline, sizeof(c.cmdline), "%s", json ? json : v->cmdline);
	free(json);
	int r = vmm_queue(d, v, rq);
	if (!r && (r = ctl_send(v->fd, &c, sizeof(c), cr->fd)))
		vmm_unqueue(d, v, rq);
	return r;
}

static void handle_create(struct request *rq, bool receive)
{
	struct wispd *d = rq->d;
	struct create c = {.receive = receive, .recv_timeout_ms = 300000, .chan = -1, .fd = -1};
	if (!(c.o = body_object(rq)))
		return;
	if (read_create_fields(rq, &c) || check_create_source(rq, &c) ||
	    check_create_name(rq, &c) ||
	    !(c.cmdline = get_cmdline(rq, json_object_get(c.o, "args"))) ||
	    open_create_source(rq, &c) || check_create_limits(rq, &c))
		goto out;
	struct vmm *v = get_create_vmm(rq, &c);
	if (!v)
		goto out;
	fill_create_vmm(rq, &c, v);
	int r = receive ? send_receiver_config(rq, v) : send_create_config(rq, &c, v);
	if (r) {
		d->create_errors++;
		answer_error(rq, 500, "cannot create the VM: sending its configuration: %s",
			     strerror(-r));
		vmm_destroy(d, v);
		goto out;
	}
	if (v->from_pool)
		pool_adopt_dir(d, v);
	rq->kind = receive ? RQ_RECEIVE : RQ_CREATE;
	d->creating++;
	suspend(rq);
out:
	if (c.fd >= 0)
		close(c.fd);
	if (c.chan >= 0)
		close(c.chan);
	free(c.cmdline);
	json_decref(c.config);
	json_decref(c.o);
}

/* Send msg to v's VMM on rq's behalf and suspend rq until the VMM answers;
 * a send that fails is answered at once (500). Returns 0 or that error. */
static int ask_vmm(struct request *rq, struct vmm *v, enum req_kind kind, const void *msg,
		   size_t len)
{
	rq->kind = kind;
	int r = vmm_ask_msg_fd(rq->d, v, msg, len, rq->save ? rq->save->fd : -1, rq);
	if (r) {
		answer_error(rq, 500, "VM '%s': %s", v->name, strerror(-r));
		return r;
	}
	suspend(rq);
	return 0;
}

/* POST /vms/{vm}/save {"file": PATH or NAME}: saves go into the snapshot
 * directory (a plain name, or a path in it), or anywhere the client itself
 * may write: wispd then makes the file with the client's rights (its
 * SO_PEERCRED uid, gid and groups). Either way wispd opens a temporary
 * file next to the target, the VMM writes into it (it opens no path: a
 * jailed VMM has none), and it takes the name only once the save worked. */
static void handle_save(struct request *rq, struct vmm *v)
{
	json_t *o = body_object(rq);
	const char *name = NULL, *file;
	if (!o)
		return;
	if (get_string(rq, o, "file", &name))
		goto out;
	if (!(file = snapshot_file(rq, "'file'", name, rq->save_path, sizeof(rq->save_path))))
		goto out;
	if (v->state != CTL_STATE_RUNNING && v->state != CTL_STATE_PAUSED) {
		answer_error(rq, 409, "VM '%s' is %s", v->name, ctl_state_name(v->state));
		goto out;
	}
	char err[WISP_ERRLEN];
	rq->save_as_client = !in_snapshot_dir(rq->d, file);
	struct sec_fs_saved as = {0};
	int r = 0;
	if (rq->save_as_client) {
		r = rq->peer_known ? sec_fs_become(&rq->peer, &as) : -EPERM;
		if (r) {
			answer_error(
				rq, 403,
				"cannot save VM '%s' to '%s': outside the snapshot directory %s, "
				"wispd writes only as the asking user (uid %d), and it cannot "
				"act as that user: save into the snapshot directory (a plain "
				"name)",
				v->name, file, rq->d->cfg.snapshot_dir,
				rq->peer_known ? (int)rq->peer.uid : -1);
			goto out;
		}
	}
	rq->save = malloc(sizeof(*rq->save));
	r = rq->save ? snap_target_open(file, rq->save, err, sizeof(err)) : -ENOMEM;
	if (rq->save_as_client)
		sec_fs_restore(&as);
	if (r) {
		free(rq->save);
		rq->save = NULL;
		answer_error(rq,
			     r == -ENOENT || r == -EACCES || r == -EISDIR || r == -EINVAL ||
					     r == -ENAMETOOLONG || r == -ENOTDIR || r == -EPERM
				     ? 400
				     : 500,
			     "cannot save VM '%s': %s", v->name,
			     r == -ENOMEM ? "out of memory" : err);
		goto out;
	}
	struct ctl_file m = {.type = CTL_SAVE};
	memcpy(m.path, file, strlen(file) + 1); /* for its messages only */
	if (ask_vmm(rq, v, RQ_SAVE, &m, sizeof(m)))
		save_abort(rq);
out:
	json_decref(o);
}

/* POST /vms/{vm}/migrate {"to": "HOST:PORT"} */
static void handle_migrate(struct request *rq, struct vmm *v)
{
	json_t *o = body_object(rq);
	const char *to = NULL;
	int chan = -1;
	if (!o)
		return;
	if (get_string(rq, o, "to", &to))
		goto out;
	const char *colon = to ? strrchr(to, ':') : NULL;
	uint64_t port;
	struct ctl_target m = {.type = CTL_MIGRATE};
	if (!colon || colon == to || (size_t)(colon - to) >= sizeof(m.host) ||
	    opt_parse_uint(colon + 1, 1, 65535, &port)) {
		answer_error(rq, 400, "'to' must be HOST:PORT (e.g. 10.0.0.2:7000), got '%s'",
			     to ? to : "");
		goto out;
	}
	if (v->state != CTL_STATE_RUNNING) {
		answer_error(rq, 409, "VM '%s' is %s", v->name, ctl_state_name(v->state));
		goto out;
	}
	if (v->mig.state == CTL_MIG_RUNNING) {
		answer_error(rq, 409, "VM '%s' is already being migrated to %s", v->name,
			     v->mig.to);
		goto out;
	}
	struct mig_creds creds;
	char why[200];
	struct sockaddr_storage ss;
	unsigned sl;
	if (get_creds(rq, o, true, &creds))
		goto out;
	if (mig_parse_addr(to, &ss, &sl, why, sizeof(why))) {
		answer_error(rq, 400, "'to': %s (a numeric address: `wisp migrate` resolves names)",
			     why);
		goto out;
	}
	const char *h = to, *hend = colon;
	if (*h == '[' && hend > h && hend[-1] == ']') { /* [v6 address]:port */
		h++;
		hend--;
	}
	memcpy(m.host, h, (size_t)(hend - h));
	snprintf(m.port, sizeof(m.port), "%llu", (unsigned long long)port);
	if (!creds.server_name)
		creds.server_name = m.host;
	char err[CTL_REASON_MAX];
	chan = transport_spawn(rq->d, "--connect", to, &creds, 20000, err, sizeof(err));
	if (chan < 0) {
		answer_error(rq, 500, "cannot migrate VM '%s': %s", v->name, err);
		goto out;
	}
	memset(&v->mig, 0, sizeof(v->mig));
	snprintf(v->mig.to, sizeof(v->mig.to), "%s", to);
	v->mig.state = CTL_MIG_RUNNING;
	rq->kind = RQ_MIGRATE;
	int r = vmm_ask_msg_fd(rq->d, v, &m, sizeof(m), chan, rq);
	if (r) {
		v->mig.state = CTL_MIG_FAILED;
		answer_error(rq, 500, "VM '%s': %s", v->name, strerror(-r));
		goto out;
	}
	MHD_suspend_connection(rq->conn);
	rq->suspended = true;
out:
	if (chan >= 0)
		close(chan);
	json_decref(o);
}

/* Order VMs by creation for `list`. */
static int by_creation(const void *a, const void *b)
{
	const struct vmm *x = *(struct vmm *const *)a, *y = *(struct vmm *const *)b;
	if (x->request_ns != y->request_ns)
		return x->request_ns < y->request_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

static void handle_list(struct request *rq)
{
	struct wispd *d = rq->d;
	struct vmm **all = calloc(d->nr_vms + 1, sizeof(*all));
	json_t *arr = json_array();
	if (!all || !arr) {
		free(all);
		json_decref(arr);
		answer_error(rq, 500, "out of memory");
		return;
	}
	size_t n = 0, b = 0;
	for (struct hmap_node *h = hmap_next(&d->by_id, &b, NULL); h && n < d->nr_vms;
	     h = hmap_next(&d->by_id, &b, h))
		all[n++] = (struct vmm *)((char *)h - offsetof(struct vmm, by_id));
	qsort(all, n, sizeof(*all), by_creation);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, vm_json(all[i]));
	free(all);
	answer_json(rq, 200, arr);
}

static void handle_daemon_stats(struct request *rq)
{
	struct wispd *d = rq->d;
	unsigned by_state[CTL_STATE_LAST + 1] = {0};
	size_t b = 0;
	for (struct hmap_node *h = hmap_next(&d->by_id, &b, NULL); h;
	     h = hmap_next(&d->by_id, &b, h)) {
		const struct vmm *v = (struct vmm *)((char *)h - offsetof(struct vmm, by_id));
		by_state[v->state]++;
	}
	json_t *pool = json_array();
	for (int i = 0; i < d->cfg.nr_classes; i++) {
		const struct pool_class *c = &d->cfg.classes[i];
		json_array_append_new(
			pool,
			json_pack("{s:s, s:I, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:s}", "kind",
				  c->linux_guest ? "linux" : "unikernel", "mem", ji(c->mem), "cpus",
				  (int)c->cpus, "target", (int)c->target, "ready", (int)c->ready,
				  "starting", (int)c->starting, "hits", ji(c->hits), "refills",
				  ji(c->refills), "shell_failures", ji(c->shell_failures),
				  "last_error", c->last_error));
	}
	json_t *states = json_object();
	for (int s = CTL_STATE_STARTING; s <= CTL_STATE_LAST; s++)
		json_object_set_new(states, ctl_state_name((enum ctl_state)s),
				    json_integer(by_state[s]));
	answer_json(rq, 200,
		    json_pack("{s:s, s:i, s:s, s:I, s:i, s:o, s:{s:I, s:I, s:I, s:I}, s:I, "
			      "s:I, s:o}",
			      "version", WISP_VERSION, "pid", (int)getpid(), "runtime_dir",
			      d->cfg.runtime_dir, "uptime_ms",
			      ji((util_now_ns() - d->started_ns) / 1000000), "vms", (int)d->nr_vms,
			      "states", states, "creates", "total", ji(d->creates), "from_pool",
			      ji(d->creates_pool), "cold", ji(d->creates_cold), "failed",
			      ji(d->create_errors), "destroys", ji(d->destroys), "adopted",
			      ji(d->adopted), "pool", pool));
}

/* Routes under /vms/{vm}. */
static void route_vm(struct request *rq, const char *method, const char *key, const char *sub)
{
	struct wispd *d = rq->d;
	struct vmm *v = table_find(d, key);
	if (!v) {
		answer_error(rq, 404, "no VM with name or id '%s'", key);
		return;
	}
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (!*sub && get) {
		answer_json(rq, 200, vm_json(v));
	} else if (!*sub && !strcmp(method, "DELETE")) {
		vmm_destroy(d, v);
		answer_text(rq, 204, strdup(""), "application/json");
	} else if ((!strcmp(sub, "pause") || !strcmp(sub, "resume")) && post) {
		bool pause = sub[0] == 'p';
		enum ctl_state want = pause ? CTL_STATE_RUNNING : CTL_STATE_PAUSED;
		if (v->state != want) {
			answer_error(rq, 409, "VM '%s' is %s", v->name, ctl_state_name(v->state));
			return;
		}
		struct ctl_cmd c = {.type = pause ? CTL_PAUSE : CTL_RESUME};
		ask_vmm(rq, v, pause ? RQ_PAUSE : RQ_RESUME, &c, sizeof(c));
	} else if (!strcmp(sub, "stats") && get) {
		rq->kind = RQ_STATS;
		if (!vmm_live(v) || vmm_ask(d, v, CTL_QUERY, rq)) {
			answer_json(rq, 200, stats_json(v));
			return;
		}
		suspend(rq);
	} else if (!strcmp(sub, "console") && get) {
		handle_console(rq, v);
	} else if (!strcmp(sub, "save") && post) {
		handle_save(rq, v);
	} else if (!strcmp(sub, "migrate") && post) {
		handle_migrate(rq, v);
	} else if (!strcmp(sub, "migration") && get) {
		answer_json(rq, 200, mig_json(v));
	} else {
		answer_error(rq, 405, "%s is not allowed on /vms/%s%s%s", method, key,
			     *sub ? "/" : "", sub);
	}
}

static void route(struct request *rq, const char *method, const char *url)
{
	if (rq->too_big) {
		answer_error(rq, 413, "request body larger than %u bytes", BODY_MAX);
		return;
	}
	bool get = !strcmp(method, "GET");
	if (!strcmp(url, "/version") && get) {
		answer_json(rq, 200, json_pack("{s:s, s:i}", "version", WISP_VERSION, "api", 1));
	} else if (!strcmp(url, "/stats") && get) {
		handle_daemon_stats(rq);
	} else if (!strcmp(url, "/metrics") && get) {
		rq->kind = RQ_METRICS;
		if ((rq->asked = metrics_query_vms(rq->d, rq))) {
			suspend(rq); /* until they all answer */
		} else {
			metrics_part(rq->d, rq);
		}
	} else if (!strcmp(url, "/vms") || !strcmp(url, "/vms/")) {
		if (get)
			handle_list(rq);
		else if (!strcmp(method, "POST"))
			handle_create(rq, false);
		else
			answer_error(rq, 405, "%s is not allowed on /vms", method);
	} else if (!strcmp(url, "/vms/receive") && !strcmp(method, "POST")) {
		handle_create(rq, true);
	} else if (!strncmp(url, "/vms/", 5)) {
		char key[CTL_NAME_MAX + 2];
		const char *p = url + 5, *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || n >= sizeof(key)) {
			answer_error(rq, 404, "no VM with name or id '%.*s'", (int)n, p);
			return;
		}
		memcpy(key, p, n);
		key[n] = 0;
		route_vm(rq, method, key, slash ? slash + 1 : "");
	} else {
		answer_error(rq, 404, "no such endpoint: %s %s", method, url);
	}
}

/* Hand the answer to MHD. */
static enum MHD_Result queue(struct request *rq)
{
	struct MHD_Response *r;
	if (rq->kind == RQ_CONSOLE && !rq->reply)
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, console_reader, rq,
						      NULL);
	else
		r = MHD_create_response_from_buffer(rq->reply_len, rq->reply ? rq->reply : "",
						    MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type",
				rq->ctype ? rq->ctype : "text/plain; charset=utf-8");
	if (rq->kind == RQ_CONSOLE && rq->reply) {
		char off[32];
		snprintf(off, sizeof(off), "%llu", (unsigned long long)rq->pos);
		MHD_add_response_header(r, "X-Wisp-Console-Offset", off);
	}
	enum MHD_Result ret = MHD_queue_response(rq->conn, rq->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* --- one request, with or without HTTP ------------------------------------------------ */

struct request *api_request_new(struct wispd *d, struct MHD_Connection *conn)
{
	struct request *rq = calloc(1, sizeof(*rq));
	if (!rq)
		return NULL;
	rq->d = d;
	rq->conn = conn;
	rq->t0 = util_now_ns();
	return rq;
}

int api_request_body(struct request *rq, const char *data, size_t len)
{
	if (rq->len + len > BODY_MAX) {
		rq->too_big = true; /* answered 413 once the body is complete */
		return 0;
	}
	char *b = realloc(rq->body, rq->len + len + 1);
	if (!b)
		return -ENOMEM;
	memcpy(b + rq->len, data, len);
	rq->body = b;
	rq->len += len;
	return 0;
}

unsigned api_request_route(struct request *rq, const char *method, const char *url,
			   const char **reply, size_t *reply_len)
{
	if (!rq->answered && !rq->suspended) {
		const char *q = rq->conn ? NULL : strchr(url, '?');
		char *path = q ? strndup(url, (size_t)(q - url)) : NULL;
		if (q && path && (rq->query = strdup(q + 1))) {
			rq->query_len = strlen(rq->query) + 1;
			for (char *a = rq->query; (a = strchr(a, '&'));)
				*a++ = 0;
		}
		route(rq, method, path ? path : url);
		free(path);
	}
	*reply = rq->reply ? rq->reply : "";
	*reply_len = rq->reply_len;
	return rq->answered ? rq->status : 0;
}

void api_request_free(struct wispd *d, struct request *rq)
{
	unfollow(d, rq);
	save_abort(rq);
	ring_close(&rq->ring);
	free(rq->body);
	free(rq->reply);
	free(rq->query);
	free(rq);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	(void)version;
	struct request *rq = *con_cls;
	if (!rq) {
		/* The socket's mode already keeps strangers out; the peer's
		 * credentials are checked too (a socket passed on, a mode
		 * changed by hand). */
		struct wispd *d = cls;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || sec_peer_allowed(ci->connect_fd, d->cfg.api_gid, NULL) ||
		    !(rq = api_request_new(d, conn)))
			return MHD_NO;
		/* Whose rights a save outside the snapshot directory takes. */
		rq->peer_known = sec_peer_creds(ci->connect_fd, &rq->peer) == 0;
		*con_cls = rq;
		const union MHD_ConnectionInfo *sc =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		conns_busy(&d->conns, sc ? sc->socket_context : NULL, true);
		return MHD_YES;
	}
	if (*upload_size) {
		if (api_request_body(rq, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	const char *reply;
	size_t reply_len;
	if (!api_request_route(rq, method, url, &reply, &reply_len))
		return MHD_YES; /* suspended until a VMM answers */
	metrics_observe_api(rq->d, method, url, rq->status, util_now_ns() - rq->t0);
	return queue(rq);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode code)
{
	(void)code;
	struct request *rq = *con_cls;
	if (!rq)
		return;
	const union MHD_ConnectionInfo *sc =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	conns_busy(&((struct wispd *)cls)->conns, sc ? sc->socket_context : NULL, false);
	api_request_free(cls, rq);
	*con_cls = NULL;
}

/* Connections come and go: per-client accounting (conns.c). */
static void connection(void *cls, struct MHD_Connection *conn, void **socket_context,
		       enum MHD_ConnectionNotificationCode toe)
{
	struct wispd *d = cls;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci ? conns_started(&d->conns, ci->connect_fd) : NULL;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		conns_closed(&d->conns, *socket_context);
		*socket_context = NULL;
	}
}

int api_start(struct wispd *d, char *err, size_t errlen)
{
	conns_init(&d->conns, d->cfg.api_max_conns, d->cfg.api_per_client);
	/* libmicrohttpd's own cap is above ours: conns.c makes room by closing
	 * idle connections, which takes libmicrohttpd a turn of the loop. */
	d->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, handle,
				  d, MHD_OPTION_LISTEN_SOCKET, d->listen_fd,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, d,
				  MHD_OPTION_NOTIFY_CONNECTION, connection, d,
				  MHD_OPTION_CONNECTION_LIMIT, d->cfg.api_max_conns + 64,
				  MHD_OPTION_CONNECTION_TIMEOUT, d->cfg.api_idle_s, MHD_OPTION_END);
	if (!d->mhd) {
		snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
		return -EIO;
	}
	return 0;
}

void api_stop(struct wispd *d)
{
	if (!d->mhd)
		return;
	/* MHD must not be stopped with suspended connections: answer them. */
	table_abandon(d);
	for (struct request *rq = d->followers; rq; rq = rq->next_follower)
		resume(rq);
	MHD_run(d->mhd);
	MHD_stop_daemon(d->mhd);
	d->mhd = NULL;
	conns_free(&d->conns);
}
