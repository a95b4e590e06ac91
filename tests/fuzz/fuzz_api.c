/* Fuzz target: wispd's HTTP API (src/control/api.c) without HTTP, through
 * api_request_* (the same entry point as the libmicrohttpd callback), on a
 * scratch wispd whose VMMs are fakes: vmm_spawn_process below replaces
 * spawn.c at link time with a socketpair whose far end is this file, so
 * creates, pauses, saves and migrations reach table.c and pool.c unchanged,
 * and the replies a VMM could send come from the input too.
 *
 * Input: records separated by 0x1e (the first 32 count). A record is
 *   METHOD ' ' URL ['?' QUERY] '\n' BODY   an API request
 *   '!' u8 vmm u8 type u8 state u8 err REASON   a VMM's reply (a ctl_info
 *        with those fields; vmm picks one of the fake VMMs spawned so far)
 *   '#' u8 vmm BYTES    raw bytes as one message from that VMM
 *   'T'                 every request waiting for a VMM times out
 *   'G' u8 vmm          that VMM's process ends (killed by SIGKILL)
 *   'P'                 a pool shell of 32 MiB is spawned and says READY
 *
 * Checked: every answer is a status from 200 to 599 and, but for a console,
 * GET /metrics (text) or a 204, a JSON object or array; a request waiting
 * for a VMM is answered once the VMM replies, times out, dies or is
 * destroyed; ASan/UBSan see the rest.
 *
 * Speed (issue 17): an answer is checked as JSON without allocating
 * (fuzz_json.h), and again at the end only if it changed; log lines are formatted but not
 * written; ASan records 4 frames per allocation and keeps 32 MiB of freed
 * blocks in quarantine (see __asan_default_options). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/wispd.h"
#include "fuzz_json.h"

#define MAX_FAKES 16
#define MAX_REQS  64
#define FAKE_PID0 (1 << 30) /* above any pid_max: kill() finds no such process */

static struct wispd d;
static char root[64];
static struct {
	pid_t pid;
	int peer; /* the VMM's end */
} fakes[MAX_FAKES];
static int nr_fakes, next_pid;

/* The fake VMM process: a socketpair, no process. */
int vmm_spawn_process(char *const argv[], int keep_fd, int extra_fd, pid_t *pid, int *fd)
{
	(void)argv;
	(void)keep_fd;	/* the jail's uid lock: wispd closes its copy */
	(void)extra_fd; /* a receiver's transport channel: wispd closes its copy */
	if (nr_fakes == MAX_FAKES)
		return -EAGAIN;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	fakes[nr_fakes].pid = *pid = FAKE_PID0 + next_pid++;
	fakes[nr_fakes++].peer = sv[1];
	*fd = sv[0];
	return 0;
}

/* The fake migration transport: a channel whose far end is closed. */
int transport_spawn_process(char *const argv[], int *chan)
{
	(void)argv;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	close(sv[1]);
	*chan = sv[0];
	return 0;
}

static void cleanup_root(void)
{
	char p[96];
	snprintf(p, sizeof(p), "%s/vms", root);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/shells", root);
	rmdir(p);
	rmdir(root);
}

static void init(void)
{
	snprintf(root, sizeof(root), "/dev/shm/wisp-fuzz-api-XXXXXX");
	if (!mkdtemp(root))
		abort();
	atexit(cleanup_root);
	char p[96];
	snprintf(p, sizeof(p), "%s/vms", root);
	mkdir(p, 0700);
	d.vms_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(p, sizeof(p), "%s/shells", root);
	mkdir(p, 0700);
	d.shells_fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d.vms_fd < 0 || d.shells_fd < 0)
		abort();
	d.run_fd = d.lock_fd = d.listen_fd = d.epfd = d.sig_fd = d.timer_fd = -1;
	snprintf(d.cfg.runtime_dir, sizeof(d.cfg.runtime_dir), "%s", root);
	snprintf(d.cfg.vmm_path, sizeof(d.cfg.vmm_path), "/nonexistent/wisp-vmm");
	d.cfg.ring_size = CTL_RING_DEFAULT;
	d.cfg.answer_timeout_ms = 5000;
	d.cfg.api_gid = (gid_t)-1;
	d.cfg.nr_classes = 1;
	d.cfg.classes[0].mem = 32u << 20;
	d.cfg.classes[0].cpus = 1;
	if (hmap_init(&d.by_id, 64) || hmap_init(&d.by_name, 64) || hmap_init(&d.by_pid, 64))
		abort();
	d.started_ns = util_now_ns();
	signal(SIGPIPE, SIG_IGN);
	log_set_fd(-1); /* every line formatted, none written: a write(2) each */
}

static void free_graveyard(void)
{
	while (d.graveyard) {
		struct vmm *v = d.graveyard;
		d.graveyard = v->next_dead;
		vmm_free(v);
	}
}

/* A fake VMM says something; wispd reads it as from its event loop. */
static void vmm_says(int i, const void *msg, size_t len)
{
	struct vmm *v = table_find_pid(&d, fakes[i].pid);
	if (!v || send(fakes[i].peer, msg, len, MSG_DONTWAIT) < 0)
		return;
	vmm_on_ready(&d, v, 0);
}

static struct request *reqs[MAX_REQS];
static unsigned nr_reqs;
static bool is_console[MAX_REQS];
static struct {
	unsigned status; /* 0: not checked yet */
	const char *reply;
	size_t len;
	uint64_t hash;
} answers[MAX_REQS];

/* Not instrumented for coverage, as fuzz_json.h. */
__attribute__((no_sanitize("coverage"))) static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
	return h;
}

/* Check an answered request; false while it waits. An answer already
 * checked is not checked again unless it changed. */
static bool check(unsigned i)
{
	const char *reply;
	size_t len;
	unsigned status = api_request_route(reqs[i], "", "", &reply, &len);
	if (!status)
		return false;
	uint64_t hash = fnv1a(reply, len);
	if (status == answers[i].status && reply == answers[i].reply && len == answers[i].len &&
	    hash == answers[i].hash)
		return true;
	if (status < 200 || status > 599) {
		fprintf(stderr, "status %u\n", status);
		abort();
	}
	if (status != 204 && !is_console[i] && !fuzz_json_ok(reply, len)) {
		fprintf(stderr, "status %u, answer not JSON: %.*s\n", status, (int)len, reply);
		abort();
	}
	answers[i].status = status;
	answers[i].reply = reply;
	answers[i].len = len;
	answers[i].hash = hash;
	return true;
}

static void request(const char *rec, size_t n)
{
	const char *nl = memchr(rec, '\n', n);
	size_t head = nl ? (size_t)(nl - rec) : n;
	const char *sp = memchr(rec, ' ', head);
	if (!sp || nr_reqs == MAX_REQS)
		return;
	char *method = strndup(rec, (size_t)(sp - rec));
	char *url = strndup(sp + 1, head - (size_t)(sp + 1 - rec));
	struct request *rq = api_request_new(&d, NULL);
	if (!method || !url || !rq)
		abort();
	if (nl && api_request_body(rq, nl + 1, n - head - 1))
		abort();
	const char *reply;
	size_t len;
	unsigned i = nr_reqs++;
	reqs[i] = rq;
	answers[i].status = 0;
	is_console[i] = strstr(url, "/console") || strstr(url, "/metrics"); /* text answers */
	api_request_route(rq, method, url, &reply, &len);
	check(i);
	free(method);
	free(url);
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
	if (!d.by_id.buckets)
		init();
	const char *p = (const char *)data, *end = p + size;
	for (int nr = 0; p < end && nr < 32; nr++) { /* 32 records: enough for any story */
		const char *e = memchr(p, 0x1e, (size_t)(end - p));
		size_t n = (size_t)((e ? e : end) - p);
		const uint8_t *u = (const uint8_t *)p;
		int vmm = n > 1 && nr_fakes ? u[1] % nr_fakes : 0;
		if (n >= 5 && p[0] == '!' && nr_fakes) {
			static const int errs[] = {0,	     -ENOEXEC, -E2BIG,	-EINVAL, -EPROTO,
						   -ENODATA, -ENOENT,  -EACCES, -EIO,	 -EBUSY};
			struct ctl_info in = {.type = u[2] < 16 ? 16u + u[2] % 6 : u[2],
					      .state = u[3] < 16 ? u[3] % 8u : u[3] * 0x01010101u,
					      .error = errs[u[4] % 10],
					      .mem = u[3] & 1 ? 64u << 20 : 0,
					      .mig_state = u[4] >> 4};
			memcpy(in.reason, p + 5,
			       n - 5 < sizeof(in.reason) ? n - 5 : sizeof(in.reason));
			vmm_says(vmm, &in, sizeof(in));
		} else if (n >= 2 && p[0] == '#' && nr_fakes) {
			vmm_says(vmm, p + 2, n - 2);
		} else if (n == 1 && p[0] == 'P') {
			char err[CTL_REASON_MAX];
			if (pool_spawn(&d, &d.cfg.classes[0], 32u << 20, -1, 0, err, sizeof(err))) {
				struct ctl_info ready = {.type = CTL_READY};
				vmm_says(nr_fakes - 1, &ready, sizeof(ready));
			}
		} else if (n >= 1 && p[0] == 'T') {
			table_expire(&d, UINT64_MAX);
		} else if (n >= 2 && p[0] == 'G' && nr_fakes) {
			struct vmm *v = table_find_pid(&d, fakes[vmm].pid);
			if (v)
				vmm_on_gone(&d, v, SIGKILL);
		} else {
			request(p, n);
		}
		free_graveyard();
		p += n + 1;
	}
	/* Every VMM goes; every request must then have its answer. */
	for (int i = 0; i < nr_fakes; i++) {
		struct vmm *v = table_find_pid(&d, fakes[i].pid);
		if (v) {
			if (v->cls && !v->is_vm) { /* a shell: out of the pool too */
				v->cls->ready = v->cls->starting = 0;
				v->cls->ready_list = NULL;
			}
			vmm_destroy(&d, v);
		}
		close(fakes[i].peer);
	}
	size_t b = 0;
	struct hmap_node *h;
	while ((h = hmap_next(&d.by_id, &b, NULL)))
		vmm_destroy(&d, (struct vmm *)((char *)h - offsetof(struct vmm, by_id)));
	free_graveyard();
	for (unsigned i = 0; i < nr_reqs; i++) {
		if (!check(i)) {
			fprintf(stderr, "request %u never answered\n", i);
			abort();
		}
		api_request_free(&d, reqs[i]);
	}
	nr_reqs = 0;
	nr_fakes = 0;
	if (d.nr_vms || d.creating || d.waiting || d.info_due) {
		fprintf(stderr, "wispd left with %u VMs, %u creating\n", d.nr_vms, d.creating);
		abort();
	}
	d.cfg.classes[0] = (struct pool_class){.mem = 32u << 20, .cpus = 1};
	return 0;
}
