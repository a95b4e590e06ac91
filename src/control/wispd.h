/* wispd's internals: the daemon, its VM table, shell pool, API server,
 * connections, jails, metrics and adoption after a restart (docs/
 * control-plane.md). The protocol it speaks with VMMs is ctl_proto.h. */
#ifndef WISP_WISPD_H
#define WISP_WISPD_H

#include "control/ctl_proto.h"

#define WISPD_MAX_CLASSES 8

struct wispd;
struct vmm;
struct request;

/* A class of the shell pool: a kind of guest, a memory size and vCPUs. */
struct pool_class {
	uint64_t mem;		 /* guest RAM of its shells */
	unsigned cpus;		 /* their vCPUs (unikernel shells: 1) */
	bool linux_guest;	 /* Linux shells (irqchip, vCPUs), else unikernel ones */
	unsigned target;	 /* shells to keep ready */
	unsigned ready;		 /* prepared, waiting */
	unsigned starting;	 /* spawned, not yet prepared */
	uint64_t hits;		 /* creates served from this class */
	uint64_t refills;	 /* shells spawned to keep the target */
	uint64_t shell_failures; /* shells that failed or died before use */
	unsigned failures;	 /* consecutive shell failures (refill backs off) */
	uint64_t retry_at_ns;	 /* refill paused until then after failures */
	struct vmm *ready_list;
	char last_error[CTL_REASON_MAX];
};

/* What wispd was started with. */
struct wispd_config {
	char runtime_dir[256];
	char snapshot_dir[256]; /* --snapshot-dir: where saves go (empty: RUNDIR/snapshots) */
	char socket_path[256];
	char vmm_path[1024];
	bool foreground;
	enum log_format log_format; /* --log-format; passed on to the VMMs */
	uint64_t ring_size;
	uint64_t answer_timeout_ms;   /* a VMM must answer a request within this */
	gid_t api_gid;		      /* --api-group: may also use the API; (gid_t)-1: none */
	int jail_mode;		      /* --jail: 1 on, 0 off, -1 auto (on as root) */
	struct jail_range jail_range; /* --jail-uid-range */
	unsigned api_max_conns;	      /* --api-max-conns: connections at once */
	unsigned api_per_client;      /* --api-conns-per-client: of one uid */
	unsigned api_idle_s;	      /* --api-idle-timeout, in seconds */
	bool seccomp;		      /* --seccomp: the VMMs' system-call filters (default on) */
	int nr_classes;
	struct pool_class classes[WISPD_MAX_CLASSES];
};

/* API latency by route and method (metrics.c), for GET /metrics. */
#define METRICS_ROUTES	 14 /* "/version" ... "/vms/{vm}/migration", other */
#define METRICS_METHODS	 4  /* GET, POST, DELETE, other */
#define METRICS_BUCKETS	 17 /* upper bounds in metrics.c; the last is +Inf */
#define METRICS_CODE_MAX 600
struct api_metrics {
	uint64_t bucket[METRICS_ROUTES][METRICS_METHODS][METRICS_BUCKETS]; /* not cumulative */
	uint64_t sum_ns[METRICS_ROUTES][METRICS_METHODS];
	uint64_t codes[METRICS_CODE_MAX]; /* responses by HTTP status */
};

/* The API server's connections (conns.c): a list, oldest activity first. */
struct api_conn;
struct api_conns {
	struct api_conn *head, *tail;
	unsigned live; /* not yet shut down by us */
	unsigned max, per_client;
	uint64_t evicted, refused; /* idle ones closed to make room; new ones refused */
};

/* Why an fd is in wispd's epoll set. */
enum ev_kind { EV_MHD, EV_SIGNAL, EV_TIMER, EV_VMM };

/* An HTTP request waiting for a VMM's answer. Answers come in order, so
 * each VMM has a FIFO of these; wispd also keeps all of them in one FIFO
 * (oldest first) to answer those whose VMM stays silent too long. */
struct pending {
	struct request *req; /* NULL once answered by a timeout: the late reply's slot */
	struct vmm *vmm;
	uint64_t deadline;
	struct pending *next;	       /* in the VMM's FIFO */
	struct pending *gprev, *gnext; /* in wispd's FIFO (while req is set) */
};

/* A VMM process known to wispd: a pool shell or a VM. */
struct vmm {
	enum ev_kind ev; /* EV_VMM: first, so that epoll data points here */
	struct hmap_node by_id, by_name, by_pid;
	bool in_names; /* by_name holds this entry */
	char id[CTL_ID_LEN + 1];
	char name[CTL_NAME_MAX + 1];
	pid_t pid;
	bool child;	       /* spawned by this wispd: waitpid tells how it ended */
	bool is_vm;	       /* configured (or being configured); else a pool shell */
	bool ready;	       /* the shell sent CTL_READY */
	bool cold;	       /* spawned for one create, outside the pool */
	bool gone;	       /* the process has ended (reaped, or its socket closed) */
	bool final;	       /* state is final (exited or crashed) */
	bool info_due;	       /* the info file is still to be written */
	unsigned bad_messages; /* malformed messages from its VMM (ignored) */
	int fd;		       /* control connection, -1 once closed */
	enum ctl_state state;
	struct pool_class *cls; /* pool shells: their class */
	struct vmm *next_ready;
	uint64_t mem;
	unsigned cpus;	       /* VMs: vCPUs asked (its pool class's, with kind) */
	bool linux_guest;      /* VMs: a Linux guest */
	char *image;	       /* path as given (the snapshot's, for a restored VM) */
	bool snapshot;	       /* restored from the snapshot `image` */
	void *args;	       /* json_t *: the guest arguments as given */
	char *cmdline;	       /* the arguments joined */
	struct json_t *config; /* its configuration (vmm/config.h) with defaults, or NULL */
	uint64_t created_wall_ns, request_ns, started_ns, first_hypercall_ns;
	uint64_t ended_ns; /* CLOCK_MONOTONIC when wispd learned the VM ended */
	bool from_pool;
	int exit_status;
	char reason[CTL_REASON_MAX];
	struct exit_stats exits;
	unsigned nr_devs; /* the devices' I/O counters, as last reported */
	struct ctl_dev_stats devs[CTL_DEV_MAX];
	struct pending *pending, *pending_tail;
	/* The last migration of this VM (CTL_PROGRESS), for GET .../migration. */
	struct {
		uint32_t state, round;
		uint64_t bytes, dirty_rate, total_ns, downtime_ns;
		char to[280];
		char error[CTL_REASON_MAX];
	} mig;
	char receive_at[72];   /* a VM waiting for an incoming migration: its ADDRESS:PORT */
	struct vmm *next_dead; /* wispd's graveyard */
	struct vmm *next_due;  /* wispd's list of info files to write */
	bool jailed;	       /* its VMM runs in a jail (jails.c) */
	bool jail_released;    /* its jail directory and cgroup are gone */
	uid_t jail_uid;
};

/* The daemon. */
struct wispd {
	struct wispd_config cfg;
	int run_fd, vms_fd, shells_fd, lock_fd, listen_fd;
	int epfd, sig_fd, timer_fd;
	enum ev_kind ev_mhd, ev_sig, ev_timer;
	struct MHD_Daemon *mhd;
	struct api_conns conns;
	struct hmap by_id, by_name, by_pid;
	unsigned nr_vms;
	struct request *followers; /* console streams waiting for output */
	struct vmm *graveyard;	   /* freed at the end of the loop iteration */
	struct vmm *info_due;	   /* info files to write once the replies are out */
	unsigned creating;	   /* creates waiting for their VMM's answer */
	bool timer_armed;
	struct pending *waiting, *waiting_tail; /* every request waiting for a VMM */
	uint64_t busy_ns; /* CLOCK_MONOTONIC of the last event: refills wait for a quiet moment */
	bool stopping;
	uint64_t started_ns;
	/* The jail (jails.c): on or off, <runtime-dir>/jail and its uids/,
	 * the cgroup subtree (empty: no cgroup limits), cgroups of dead VMMs
	 * still to remove. */
	bool jail, cgroups;
	int jail_fd, uids_fd;
	uint32_t uid_hint;
	char cgroup_base[256];
	char (*cg_dead)[CTL_ID_LEN + 1];
	unsigned *cg_dead_tries;
	unsigned nr_cg_dead, cap_cg_dead;
	/* Counters for GET /stats. */
	uint64_t creates, creates_pool, creates_cold, destroys, create_errors, adopted;
	struct api_metrics api; /* for GET /metrics */
};

/* --- conns.c: the API's connections per client ------------------------------ */
/* No connections yet; at most max at once, per_client of one uid. */
void conns_init(struct api_conns *s, unsigned max, unsigned per_client);
/* A connection on fd was accepted: returns its context (for the others).
 * Over a limit, the oldest idle connection is shut down, or this one. */
void *conns_started(struct api_conns *s, int fd);
/* A request on the connection started (busy) or ended (idle again). */
void conns_busy(struct api_conns *s, void *ctx, bool busy);
/* The connection closed: forget it. */
void conns_closed(struct api_conns *s, void *ctx);
/* Forget every connection (the server stopped). */
void conns_free(struct api_conns *s);

/* --- wispd.c: the daemon and its event loop ---------------------------------- */
/* Entry point of wispd. */
int wispd_main(int argc, char **argv);
/* Parse wispd's command line into cfg; on error writes why into err. */
int wispd_parse_args(int argc, char **argv, struct wispd_config *cfg, char *err, size_t errlen);
/* Parse a pool spec "SIZE=COUNT" (unikernel shells of 1 vCPU) or
 * "linux:SIZE:CPUS=COUNT" (Linux shells) into a class. */
int wispd_parse_pool(const char *spec, struct pool_class *c, char *err, size_t errlen);
/* Start watching a VMM's control connection. */
void wispd_watch(struct wispd *d, struct vmm *v);
/* Arm (or disarm) the periodic timer for console followers and pool retries. */
void wispd_update_timer(struct wispd *d);
/* Free v at the end of this loop iteration (events for it may still be
 * queued); v must already be out of every map. */
void wispd_bury(struct wispd *d, struct vmm *v);

/* --- table.c: the VM table ----------------------------------------------------- */
/* Allocate an entry (not yet in any map). */
struct vmm *vmm_new(void);
/* Free an entry that is in no map and has no pending request. */
void vmm_free(struct vmm *v);
/* Put a live VMM in the pid map (how SIGCHLD finds it). */
void table_add_pid(struct wispd *d, struct vmm *v);
/* Make v a VM: put it in the id map, and the name map if it has a name. */
void table_add_vm(struct wispd *d, struct vmm *v);
/* Take v out of every map. */
void table_remove(struct wispd *d, struct vmm *v);
/* Look a VM up by id, then by name (shells are not found). */
struct vmm *table_find(struct wispd *d, const char *key);
struct vmm *table_find_name(struct wispd *d, const char *name);
struct vmm *table_find_pid(struct wispd *d, pid_t pid);
/* Close v's connection and stop watching it. */
void vmm_close(struct wispd *d, struct vmm *v);
/* Handle everything v's VMM sent (called when its fd is ready). */
void vmm_on_ready(struct wispd *d, struct vmm *v, uint32_t events);
/* One message of n bytes from v's VMM (as vmm_on_ready reads them): one
 * that is not a valid report (ctl_check_info) is dropped with a line on
 * stderr, as is a READY from a shell that already said it. */
void vmm_on_message(struct wispd *d, struct vmm *v, const void *msg, size_t n);
/* The process behind v ended with wait status `status` (children) or
 * without one (status < 0: adopted, or connection closed). */
void vmm_on_gone(struct wispd *d, struct vmm *v, int status);
/* Destroy a VM: stop its VMM (SIGKILL or CTL_DESTROY), forget it, and
 * remove its directory. Never waits for the teardown. */
void vmm_destroy(struct wispd *d, struct vmm *v);
/* Send a command and queue req for the reply; -errno if v cannot answer. */
int vmm_ask(struct wispd *d, struct vmm *v, uint32_t type, struct request *req);
/* The same with a whole message (msg starts with its uint32_t type). */
int vmm_ask_msg(struct wispd *d, struct vmm *v, const void *msg, size_t len, struct request *req);
/* The same with fd attached (SCM_RIGHTS), or none when fd < 0. */
int vmm_ask_msg_fd(struct wispd *d, struct vmm *v, const void *msg, size_t len, int fd,
		   struct request *req);
/* Queue req for v's next reply; vmm_unqueue takes it back. */
int vmm_queue(struct wispd *d, struct vmm *v, struct request *req);
void vmm_unqueue(struct wispd *d, struct vmm *v, struct request *req);
/* Answer the requests whose VMM has not answered by now (504); a create
 * that times out destroys its VMM. */
void table_expire(struct wispd *d, uint64_t now);
/* Answer every waiting request with 503 (wispd is stopping). */
void table_abandon(struct wispd *d);
/* Apply a CTL_INFO / CTL_EXIT from the VMM to v. */
void vmm_apply_info(struct vmm *v, const struct ctl_info *in);
/* Write v's info file (what wispd knows; read back only for a VMM that died
 * while wispd was away). */
void vmm_write_info(struct wispd *d, struct vmm *v);
/* Is the VMM still there to talk to? */
bool vmm_live(const struct vmm *v);

/* --- pool.c: pre-created shells -------------------------------------------- */
/* Spawn shells until every class has its target (ready + starting). */
void pool_refill(struct wispd *d);
/* Take a ready shell of exactly that class (memory, vCPUs, kind), or NULL
 * (the caller goes cold). */
struct vmm *pool_take(struct wispd *d, uint64_t mem, unsigned cpus, bool linux_guest);
/* Move a taken shell's directory from shells/ to vms/. */
void pool_adopt_dir(struct wispd *d, struct vmm *v);
/* Start a VMM: a shell for the pool class cls, or (cls NULL) a cold VMM
 * of mem bytes for one VM. recv_chan >= 0: a VMM that waits for an
 * incoming migration through the transport on that channel (see
 * transport_spawn), for timeout_ms. */
struct vmm *pool_spawn(struct wispd *d, struct pool_class *cls, uint64_t mem, int recv_chan,
		       uint64_t recv_timeout_ms, char *err, size_t errlen);
/* How a migration's transport authenticates (the request's fields; paths
 * absolute). */
struct mig_creds {
	const char *psk_file, *psk_identity, *ca, *cert, *key, *server_name;
	bool cleartext;
};
/* Start wisp-tls (next to the VMM binary) for one migration: mode
 * "--listen" or "--connect" addr, with c, and deadline_ms. Returns the
 * VMM's end of its channel (close it once handed over), or -1 and err. */
int transport_spawn(struct wispd *d, const char *mode, const char *addr, const struct mig_creds *c,
		    uint64_t deadline_ms, char *err, size_t errlen);
/* A shell reported READY / FAILED / died. */
void pool_shell_ready(struct wispd *d, struct vmm *v);
void pool_shell_failed(struct wispd *d, struct vmm *v, const char *why);
/* The class of that memory size, vCPU count and kind, or NULL. */
struct pool_class *pool_class_for(struct wispd *d, uint64_t mem, unsigned cpus, bool linux_guest);
/* A class as --pool names it ("32M", "linux:256M:2"), in buf. */
const char *pool_class_name(const struct pool_class *c, char *buf, size_t len);
/* Remove a directory and the files in it (not recursive below that). */
void dir_remove(int parent_fd, const char *name);

/* --- spawn.c: a VMM process ----------------------------------------------- */
/* Start argv (argv[0] the VMM) with its end of a new control socketpair as
 * fd 3, keep_fd (if >= 0) as fd 4 and extra_fd (if >= 0) as the next (4
 * or 5), no other fd of ours; 0 with its pid and wispd's end (non-blocking)
 * in *fd, or -errno. */
int vmm_spawn_process(char *const argv[], int keep_fd, int extra_fd, pid_t *pid, int *fd);
/* Start argv (argv[0] wisp-tls) with its end of a new channel as fd 3, no
 * other fd of ours; 0 with the other end (for the VMM) in *chan, or
 * -errno. wispd reaps it like any child. */
int transport_spawn_process(char *const argv[], int *chan);

/* --- jails.c: wispd's side of the VMM jail ------------------------------------ */
/* What pool_spawn passes to a jailed VMM. */
struct jail_spawn {
	int lock_fd; /* the uid's lock, inherited by the VMM; -1: no jail */
	char uid[16];
	char dir[512];
	char cgroup[320];
};
/* Decide on the jail (--jail, root), make <runtime-dir>/jail and find the
 * cgroup subtree (without one, say so in one line and go on). */
int jails_init(struct wispd *d, char *err, size_t errlen);
/* Claim a uid, make the jail directory and cgroup for v's VMM (mem bytes
 * of guest RAM); js->lock_fd stays -1 when there is no jail. */
int jails_spawn_prepare(struct wispd *d, struct vmm *v, uint64_t mem, struct jail_spawn *js,
			char *err, size_t errlen);
/* Apply a VM's own limits to its cgroup; asked: the configuration set
 * them, so having no cgroup is an error (else it is not). */
int jails_set_limits(struct wispd *d, struct vmm *v, const struct jail_limits *l, bool asked,
		     char *err, size_t errlen);
/* v's VMM is gone or forgotten: remove its jail directory and cgroup. */
void jails_release(struct wispd *d, struct vmm *v);
/* Remove the cgroups of VMMs that were still exiting. */
void jails_sweep(struct wispd *d);
/* After adoption: adopted VMs whose jail directory exists are jailed; the
 * jail directories and cgroups of VMMs that are gone are removed. */
void jails_adopt(struct wispd *d);

/* --- adopt.c: after a restart ------------------------------------------------ */
/* Re-adopt the VMs in vms/ (live VMMs answer on ctl.sock; dead ones are
 * reported from their status/info files) and clear stale shells. */
void adopt_all(struct wispd *d);

/* --- metrics.c: GET /metrics (Prometheus text format 0.0.4) ------------------ */
/* Count one answered API request: its route (from method and url), status
 * and time from arrival to the answer. */
void metrics_observe_api(struct wispd *d, const char *method, const char *url, unsigned status,
			 uint64_t ns);
/* Ask every running or paused VM for fresh counters (CTL_QUERY) on req's
 * behalf; returns how many were asked (each answers through api_reply). */
unsigned metrics_query_vms(struct wispd *d, struct request *req);
/* The exposition: every VM's series and wispd's own; malloc'd, NULL when
 * out of memory. */
char *metrics_render(struct wispd *d);
/* A VM's devices' I/O counters as a JSON array (GET /vms/{vm}/stats). */
struct json_t *metrics_devices_json(const struct vmm *v);
/* Rss and Pss of a live VMM, from /proc/PID/smaps_rollup (bytes; 0 if unknown). */
void vmm_memory(const struct vmm *v, uint64_t *rss, uint64_t *pss);
/* Time since the create request, until the VM ended if it has. */
uint64_t vmm_uptime_ns(const struct vmm *v);

/* --- api.c: the HTTP API ------------------------------------------------------ */
/* Start the HTTP server on d->listen_fd (inside wispd's event loop). */
int api_start(struct wispd *d, char *err, size_t errlen);
/* Resume every request, then stop the server. */
void api_stop(struct wispd *d);
/* A VMM answered (or failed) a request queued with vmm_ask: info is NULL
 * when it cannot answer any more, with why in `why`. */
void api_reply(struct wispd *d, struct request *req, struct vmm *v, const struct ctl_info *info,
	       const char *why);
/* v did not answer req in time: 504. */
void api_timeout(struct wispd *d, struct request *req, struct vmm *v);
/* wispd is stopping: 503. */
void api_abandon(struct request *req);
/* Wake console followers whose ring moved or whose VM stopped. */
void api_poll_followers(struct wispd *d);
/* One request, with HTTP (conn) or without (conn NULL: the fuzz target's way
 * in, where the URL may carry its ?query). New, add body bytes (-ENOMEM), then
 * route: the status and *reply once answered, 0 while it waits for a VMM
 * (route again once api_reply answered it); free when done. */
struct MHD_Connection;
struct request *api_request_new(struct wispd *d, struct MHD_Connection *conn);
int api_request_body(struct request *rq, const char *data, size_t len);
unsigned api_request_route(struct request *rq, const char *method, const char *url,
			   const char **reply, size_t *reply_len);
void api_request_free(struct wispd *d, struct request *rq);

#endif
