/* wispd: the daemon. One thread, one epoll loop: the HTTP server
 * (libmicrohttpd's epoll fd), SIGCHLD/SIGTERM through a signalfd, one
 * control connection per VMM (the only per-VM fd wispd holds, so 10,000 VMs
 * fit in a 20,000-fd limit), and a timer for console followers and pool
 * retries. VMMs are separate processes in their own sessions: if wispd dies,
 * they keep running, and the next wispd adopts them (adopt.c). */
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <microhttpd.h>

#include "vmm/config.h"
#include "control/wispd.h"
#include "security/security.h"

#define TIMER_PERIOD_NS (50ull * 1000000)
/* The pool refills once wispd has been idle this long (a shell being
 * prepared takes a core for a millisecond or two: not while a create is
 * being served), or after REFILL_MAX_WAIT_NS of continuous load. */
#define REFILL_IDLE_NS	   (2ull * 1000000)
#define REFILL_MAX_WAIT_NS (100ull * 1000000)

static const char usage[] =
	"usage: wispd [--runtime-dir DIR] [--socket PATH] [--pool [linux:]SIZE[:CPUS]=COUNT]...\n"
	"             [--vmm PATH] [--console-size SIZE] [--answer-timeout DURATION]\n"
	"             [--foreground] [--api-group GROUP] [--api-max-conns N]\n"
	"             [--api-conns-per-client N] [--api-idle-timeout DURATION]\n"
	"             [--jail on|off|auto] [--jail-uid-range FIRST-LAST] [--snapshot-dir DIR]\n"
	"             [--log-format text|json] [--seccomp on|off] [--config FILE]\n";

int wispd_parse_pool(const char *spec, struct pool_class *c, char *err, size_t errlen)
{
	static const char use[] = "use SIZE=COUNT or linux:SIZE:CPUS=COUNT, e.g. 32M=4 or "
				  "linux:256M:2=1";
	char size[64];
	const char *eq = strchr(spec, '='), *body = spec;
	bool lx = strncmp(spec, "linux:", 6) == 0;
	uint64_t mem, count, cpus = 1;
	if (lx)
		body += 6;
	if (!eq || eq < body || (size_t)(eq - body) >= sizeof(size)) {
		snprintf(err, errlen, "--pool '%s': %s", spec, use);
		return -1;
	}
	memcpy(size, body, (size_t)(eq - body));
	size[eq - body] = 0;
	char *colon = strchr(size, ':');
	if (colon && !lx) {
		snprintf(err, errlen, "--pool '%s': %s (unikernel shells have 1 vCPU)", spec, use);
		return -1;
	}
	if (colon) {
		*colon = 0;
		if (opt_parse_uint(colon + 1, 1, WISP_MAX_VCPUS, &cpus)) {
			snprintf(err, errlen,
				 "--pool '%s': vCPUs '%s' must be a number from 1 to %d", spec,
				 colon + 1, WISP_MAX_VCPUS);
			return -1;
		}
	}
	char why[WISP_ERRLEN];
	if (opt_parse_size(size, &mem) || vm_check_mem(mem, "--pool", size, why, sizeof(why))) {
		snprintf(err, errlen,
			 "--pool '%s': '%s' is not a memory size from %llu MiB to %llu GiB", spec,
			 size, WISP_MIN_MEM >> 20, WISP_MAX_MEM >> 30);
		return -1;
	}
	if (opt_parse_uint(eq + 1, 0, 4096, &count)) {
		snprintf(err, errlen, "--pool '%s': count '%s' must be a number from 0 to 4096",
			 spec, eq + 1);
		return -1;
	}
	memset(c, 0, sizeof(*c));
	c->mem = mem;
	c->cpus = (unsigned)cpus;
	c->linux_guest = lx;
	c->target = (unsigned)count;
	return 0;
}

/* The options themselves, from argv (the config file's already in it). */
static int parse_argv(int argc, char **argv, struct wispd_config *cfg, char *err, size_t errlen)
{
	static const struct option opts[] = {
		{"runtime-dir", required_argument, NULL, 'r'},
		{"socket", required_argument, NULL, 's'},
		{"pool", required_argument, NULL, 'p'},
		{"vmm", required_argument, NULL, 'v'},
		{"console-size", required_argument, NULL, 'c'},
		{"answer-timeout", required_argument, NULL, 't'},
		{"api-group", required_argument, NULL, 'g'},
		{"jail", required_argument, NULL, 'j'},
		{"jail-uid-range", required_argument, NULL, 'u'},
		{"api-max-conns", required_argument, NULL, 'm'},
		{"api-conns-per-client", required_argument, NULL, 'k'},
		{"api-idle-timeout", required_argument, NULL, 'i'},
		{"snapshot-dir", required_argument, NULL, 'd'},
		{"foreground", no_argument, NULL, 'f'},
		{"log-format", required_argument, NULL, 'l'},
		{"seccomp", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	memset(cfg, 0, sizeof(*cfg));
	ctl_default_runtime_dir(cfg->runtime_dir, sizeof(cfg->runtime_dir));
	cfg->ring_size = CTL_RING_DEFAULT;
	cfg->answer_timeout_ms = 10000;
	cfg->api_gid = (gid_t)-1;
	cfg->jail_mode = -1;
	cfg->jail_range = (struct jail_range){JAIL_UID_FIRST, JAIL_UID_LAST};
	cfg->api_max_conns = 512;
	cfg->api_per_client = 64;
	cfg->api_idle_s = 30;
	cfg->seccomp = true;
	bool pool_given = false;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
		case 's':
		case 'd':
		case 'v': {
			char *dst = c == 'r'   ? cfg->runtime_dir
				    : c == 's' ? cfg->socket_path
				    : c == 'd' ? cfg->snapshot_dir
					       : cfg->vmm_path;
			size_t cap = c == 'v' ? sizeof(cfg->vmm_path) : sizeof(cfg->runtime_dir);
			if (!*optarg || strlen(optarg) >= cap) {
				snprintf(err, errlen, "%s: path empty or too long",
					 argv[optind - 1]);
				return -1;
			}
			snprintf(dst, cap, "%s", optarg);
			break;
		}
		case 'p':
			pool_given = true;
			if (!strcmp(optarg, "none"))
				break;
			if (cfg->nr_classes == WISPD_MAX_CLASSES) {
				snprintf(err, errlen, "--pool: at most %d size classes",
					 WISPD_MAX_CLASSES);
				return -1;
			}
			if (wispd_parse_pool(optarg, &cfg->classes[cfg->nr_classes], err, errlen))
				return -1;
			for (int i = 0; i < cfg->nr_classes; i++) {
				const struct pool_class *a = &cfg->classes[i],
							*b = &cfg->classes[cfg->nr_classes];
				if (a->mem == b->mem && a->cpus == b->cpus &&
				    a->linux_guest == b->linux_guest) {
					snprintf(err, errlen, "--pool: class %s given twice",
						 optarg);
					return -1;
				}
			}
			cfg->nr_classes++;
			break;
		case 'c':
			if (opt_parse_size(optarg, &cfg->ring_size) || cfg->ring_size < 4096 ||
			    cfg->ring_size > (1ull << 30)) {
				snprintf(err, errlen,
					 "--console-size '%s': must be a size from 4K to 1G",
					 optarg);
				return -1;
			}
			break;
		case 't':
			if (opt_parse_duration_ms(optarg, &cfg->answer_timeout_ms)) {
				snprintf(err, errlen,
					 "--answer-timeout '%s': not a duration (use e.g. 500ms or "
					 "10s)",
					 optarg);
				return -1;
			}
			break;
		case 'g': {
			struct group *g = getgrnam(optarg);
			if (!g) {
				snprintf(err, errlen, "--api-group '%s': no such group", optarg);
				return -1;
			}
			cfg->api_gid = g->gr_gid;
			break;
		}
		case 'j':
			if (!strcmp(optarg, "on") || !strcmp(optarg, "off") ||
			    !strcmp(optarg, "auto")) {
				cfg->jail_mode = optarg[1] == 'n' ? 1 : optarg[1] == 'f' ? 0 : -1;
				break;
			}
			snprintf(err, errlen, "--jail '%s': use on, off or auto", optarg);
			return -1;
		case 'u':
			if (jail_parse_range(optarg, &cfg->jail_range, err, errlen))
				return -1;
			break;
		case 'm':
		case 'k': {
			uint64_t n;
			if (opt_parse_uint(optarg, 1, 100000, &n)) {
				snprintf(err, errlen, "%s '%s': must be a number from 1 to 100000",
					 c == 'm' ? "--api-max-conns" : "--api-conns-per-client",
					 optarg);
				return -1;
			}
			*(c == 'm' ? &cfg->api_max_conns : &cfg->api_per_client) = (unsigned)n;
			break;
		}
		case 'i': {
			uint64_t ms;
			if (opt_parse_duration_ms(optarg, &ms) || ms > 86400000) {
				snprintf(err, errlen,
					 "--api-idle-timeout '%s': must be a duration from 1s to "
					 "24h (e.g. 30s)",
					 optarg);
				return -1;
			}
			/* libmicrohttpd counts whole seconds: round up. */
			cfg->api_idle_s = (unsigned)((ms + 999) / 1000);
			break;
		}
		case 'f':
			cfg->foreground = true;
			break;
		case 'l':
			if (log_parse_format(optarg, &cfg->log_format)) {
				snprintf(err, errlen, "--log-format '%s': must be text or json",
					 optarg);
				return -1;
			}
			break;
		case 'S':
			if (sec_seccomp_parse(optarg, &cfg->seccomp)) {
				snprintf(err, errlen, "--seccomp '%s': use on or off", optarg);
				return -1;
			}
			break;
		case 'h':
			return 1;
		default:
			if (optopt)
				snprintf(err, errlen, "option '-%c' is not known", optopt);
			else
				snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (!pool_given)
		wispd_parse_pool(WISPD_DEFAULT_POOL, &cfg->classes[cfg->nr_classes++], err, errlen);
	if (!cfg->socket_path[0] &&
	    (size_t)snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s/%s", cfg->runtime_dir,
			     WISPD_SOCKET_NAME) >= sizeof(cfg->socket_path)) {
		snprintf(err, errlen, "--runtime-dir: path too long");
		return -1;
	}
	if (strlen(cfg->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "socket path '%s' is longer than %zu bytes", cfg->socket_path,
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -1;
	}
	if (!cfg->vmm_path[0]) { /* wisp-vmm next to this binary */
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0) {
			snprintf(err, errlen, "cannot find the wisp-vmm binary; give --vmm PATH");
			return -1;
		}
		self[n] = 0;
		char *slash = strrchr(self, '/');
		*slash = 0;
		snprintf(cfg->vmm_path, sizeof(cfg->vmm_path), "%.1000s/wisp-vmm", self);
	}
	return 0;
}

/* The settings wispd.conf(5) may hold: wispd's long options. */
static const char *const conf_keys[] = {
	"runtime-dir",		"socket",	    "pool",	  "vmm",
	"console-size",		"answer-timeout",   "api-group",  "api-max-conns",
	"api-conns-per-client", "api-idle-timeout", "jail",	  "jail-uid-range",
	"snapshot-dir",		"foreground",	    "log-format", "seccomp"};

/* One line of a config file ("key = value", '#' comments) as an option
 * ("--key=value"); *opt is NULL for a blank line. */
static int conf_line(const char *path, int lineno, char *line, char **opt, char *err, size_t errlen)
{
	*opt = NULL;
	char *hash = strchr(line, '#');
	if (hash)
		*hash = 0;
	char *key = line + strspn(line, " \t");
	size_t klen = strcspn(key, " \t=\n");
	if (!klen)
		return 0;
	char *val = key + klen;
	val += strspn(val, " \t");
	if (*val == '=')
		val++;
	val += strspn(val, " \t");
	size_t vlen = strcspn(val, "\n");
	while (vlen && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
		vlen--;
	key[klen] = 0;
	val[vlen] = 0;
	bool known = false;
	for (size_t i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++)
		known |= !strcmp(key, conf_keys[i]);
	if (!known) {
		snprintf(err, errlen,
			 "%s:%d: unknown setting '%s' (known: runtime-dir, socket, pool, vmm, "
			 "console-size, answer-timeout, api-group, api-max-conns, "
			 "api-conns-per-client, api-idle-timeout, jail, jail-uid-range, "
			 "snapshot-dir, foreground, log-format, seccomp)",
			 path, lineno, key);
		return -1;
	}
	if (!strcmp(key, "foreground")) {
		if (!strcmp(val, "no"))
			return 0;
		if (strcmp(val, "yes")) {
			snprintf(err, errlen, "%s:%d: foreground: '%s' is neither yes nor no", path,
				 lineno, val);
			return -1;
		}
		*opt = strdup("--foreground");
	} else if (!*val) {
		snprintf(err, errlen, "%s:%d: %s: no value", path, lineno, key);
		return -1;
	} else if (asprintf(opt, "--%s=%s", key, val) < 0) {
		*opt = NULL;
	}
	if (!*opt) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int wispd_parse_args(int argc, char **argv, struct wispd_config *cfg, char *err, size_t errlen)
{
	/* --config FILE: its settings come first, so the command line wins. */
	const char *path = NULL;
	int at = -1;
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc) {
			path = argv[i + 1];
			at = i;
			break;
		}
		if (!strncmp(argv[i], "--config=", 9)) {
			path = argv[i] + 9;
			at = i;
			break;
		}
	}
	if (!path)
		return parse_argv(argc, argv, cfg, err, errlen);
	int skip = strchr(argv[at], '=') ? 1 : 2;
	/* A FIFO must not block us, and only a regular file is a config. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	FILE *f = NULL;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "r"))) {
		snprintf(err, errlen, "--config '%s': %s", path,
			 fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char **nargv = calloc((size_t)argc + 1, sizeof(char *));
	char **owned = NULL; /* the options read from the file */
	int nowned = 0, r = -1, lineno = 0;
	char line[1024];
	if (!nargv)
		goto out;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			goto out;
		}
		char *opt;
		if (conf_line(path, lineno, line, &opt, err, errlen))
			goto out;
		if (!opt)
			continue;
		char **grown = realloc(owned, (size_t)(nowned + 1) * sizeof(char *));
		if (!grown) {
			free(opt);
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		owned = grown;
		owned[nowned++] = opt;
	}
	char **all = realloc(nargv, (size_t)(argc + nowned + 1) * sizeof(char *));
	if (!all) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	nargv = all;
	int n = 0;
	nargv[n++] = argv[0];
	for (int i = 0; i < nowned; i++)
		nargv[n++] = owned[i];
	for (int i = 1; i < argc; i++)
		if (i < at || i >= at + skip)
			nargv[n++] = argv[i];
	nargv[n] = NULL;
	r = parse_argv(n, nargv, cfg, err, errlen);
out:
	fclose(f);
	for (int i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(nargv);
	return r;
}

void wispd_watch(struct wispd *d, struct vmm *v)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = v};
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, v->fd, &ev);
}

void wispd_bury(struct wispd *d, struct vmm *v)
{
	jails_release(d, v);
	if (v->info_due) { /* it must not be written, nor reached once freed */
		struct vmm **p = &d->info_due;
		while (*p && *p != v)
			p = &(*p)->next_due;
		if (*p)
			*p = v->next_due;
		v->info_due = false;
	}
	v->next_dead = d->graveyard;
	d->graveyard = v;
}

void wispd_update_timer(struct wispd *d)
{
	bool need = d->followers != NULL || d->waiting != NULL || d->nr_cg_dead;
	uint64_t now = util_now_ns();
	for (int i = 0; i < d->cfg.nr_classes; i++)
		need |= d->cfg.classes[i].retry_at_ns > now;
	if (need == d->timer_armed)
		return;
	struct itimerspec it = {0};
	if (need)
		it.it_value.tv_nsec = it.it_interval.tv_nsec = (long)TIMER_PERIOD_NS;
	timerfd_settime(d->timer_fd, 0, &it, NULL);
	d->timer_armed = need;
}

/* mkdir -p with mode for the last component. */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Socket activation (wispd.socket): systemd passes the listening API
 * socket as fd 3 with LISTEN_PID and LISTEN_FDS=1. Returns 1 if it was
 * taken, 0 if wispd was not socket-activated, -1 on a bad hand-over. */
static int take_activated_socket(struct wispd *d, char *err, size_t errlen)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	if (!pid || !fds || strtol(pid, NULL, 10) != (long)getpid())
		return 0;
	unsetenv("LISTEN_PID"); /* not for the VMMs we start */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	int listening = 0, type = 0;
	socklen_t l1 = sizeof(listening), l2 = sizeof(type);
	struct sockaddr_un a;
	socklen_t al = sizeof(a);
	if (strcmp(fds, "1") || getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l1) < 0 ||
	    getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &l2) < 0 || !listening ||
	    type != SOCK_STREAM || getsockname(3, (struct sockaddr *)&a, &al) < 0 ||
	    a.sun_family != AF_UNIX || al <= offsetof(struct sockaddr_un, sun_path) ||
	    !a.sun_path[0]) {
		snprintf(err, errlen,
			 "socket activation: LISTEN_FDS=%s, want one listening unix "
			 "stream socket with a path on fd 3",
			 fds);
		return -1;
	}
	if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0 || fcntl(3, F_SETFL, O_NONBLOCK) < 0) {
		snprintf(err, errlen, "socket activation: fd 3: %s", strerror(errno));
		return -1;
	}
	a.sun_path[sizeof(a.sun_path) - 1] = 0;
	snprintf(d->cfg.socket_path, sizeof(d->cfg.socket_path), "%s", a.sun_path);
	d->listen_fd = 3;
	return 1;
}

/* The API socket; refuses to take over one that a live daemon serves. */
static int listen_api(struct wispd *d, char *err, size_t errlen)
{
	int act = take_activated_socket(d, err, errlen);
	if (act)
		return act < 0 ? -1 : 0;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, d->cfg.socket_path, strlen(d->cfg.socket_path) + 1); /* length checked */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
		snprintf(err, errlen, "another daemon already listens on %s", a.sun_path);
		close(s);
		return -1;
	}
	close(s);
	unlink(a.sun_path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 256) < 0 ||
	    chmod(a.sun_path, d->cfg.api_gid != (gid_t)-1 ? 0660 : 0600) < 0 ||
	    (d->cfg.api_gid != (gid_t)-1 && chown(a.sun_path, (uid_t)-1, d->cfg.api_gid) < 0)) {
		snprintf(err, errlen, "API socket %s: %s", a.sun_path, strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	d->listen_fd = s;
	return 0;
}

/* The snapshot directory (docs/snapshot.md, "Where saves go"): made 0700
 * if missing; ours and private, or refused; its real path kept. */
static int take_snapshot_dir(struct wispd_config *cfg, char *err, size_t errlen)
{
	char real[PATH_MAX];
	if (!cfg->snapshot_dir[0])
		snprintf(cfg->snapshot_dir, sizeof(cfg->snapshot_dir), "%.240s/snapshots",
			 cfg->runtime_dir);
	int r = mkdir_p(cfg->snapshot_dir, 0700);
	if (r || !realpath(cfg->snapshot_dir, real)) {
		snprintf(err, errlen, "snapshot directory '%s': %s", cfg->snapshot_dir,
			 strerror(r ? -r : errno));
		return -1;
	}
	if (sec_check_private_dir(real, err, errlen)) {
		char why[1024];
		snprintf(why, sizeof(why), "%.900s", err);
		const char *p = strncmp(why, "runtime ", 8) ? why : why + 8;
		snprintf(err, errlen, "snapshot %.400s", p);
		return -1;
	}
	if (strlen(real) >= sizeof(cfg->snapshot_dir)) {
		snprintf(err, errlen, "snapshot directory '%.300s...': path too long", real);
		return -1;
	}
	memcpy(cfg->snapshot_dir, real, strlen(real) + 1); /* length checked */
	return 0;
}

/* Take the runtime directory: one wispd per directory (flock). */
static int take_runtime_dir(struct wispd *d, char *err, size_t errlen)
{
	struct wispd_config *cfg = &d->cfg;
	int r = mkdir_p(cfg->runtime_dir, 0711);
	char real[PATH_MAX];
	if (r || !realpath(cfg->runtime_dir, real) || chdir(real) < 0) {
		snprintf(err, errlen, "runtime directory '%s': %s", cfg->runtime_dir,
			 strerror(r ? -r : errno));
		return -1;
	}
	/* Someone else's directory (a /tmp/wisp-UID planted before us) or one
	 * others can write in could hold their symlinks and sockets. */
	if (sec_check_private_dir(real, err, errlen))
		return -1;
	if (strlen(real) >= sizeof(cfg->runtime_dir) - 64) {
		snprintf(err, errlen, "runtime directory '%.300s...': path too long", real);
		return -1;
	}
	memcpy(cfg->runtime_dir, real, strlen(real) + 1); /* length checked */
	const char *dir = cfg->runtime_dir;
	d->lock_fd = sec_open_private_file(AT_FDCWD, "wispd.lock", O_RDWR | O_CREAT, 0644);
	if (d->lock_fd < 0)
		errno = -d->lock_fd; /* a planted symlink: ELOOP, never followed */
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "?";
		if (errno == EWOULDBLOCK) {
			ssize_t n = pread(d->lock_fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = 0;
			pid[strcspn(pid, "\n")] = 0;
			snprintf(err, errlen,
				 "another wispd (pid %s) is running with runtime directory %s", pid,
				 dir);
		} else {
			snprintf(err, errlen, "%s/wispd.lock: %s", dir, strerror(errno));
		}
		return -1;
	}
	if (ftruncate(d->lock_fd, 0) == 0)
		dprintf(d->lock_fd, "%d\n", (int)getpid());
	if (take_snapshot_dir(cfg, err, errlen))
		return -1;
	if ((mkdir("vms", 0711) < 0 && errno != EEXIST) ||
	    (mkdir("shells", 0711) < 0 && errno != EEXIST) ||
	    (d->vms_fd = open("vms", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (d->shells_fd = open("shells", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (d->run_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "runtime directory %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int add_ev(struct wispd *d, int fd, enum ev_kind *kind)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = kind};
	return epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int setup(struct wispd *d, char *err, size_t errlen)
{
	/* One fd per VM: take every descriptor the hard limit allows. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (access(d->cfg.vmm_path, X_OK) < 0) {
		snprintf(err, errlen, "VMM binary '%.400s': %s", d->cfg.vmm_path, strerror(errno));
		return -1;
	}
	if (take_runtime_dir(d, err, errlen) || jails_init(d, err, errlen) ||
	    listen_api(d, err, errlen))
		return -1;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGHUP);
	sigprocmask(SIG_BLOCK, &s, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->ev_mhd = EV_MHD;
	d->ev_sig = EV_SIGNAL;
	d->ev_timer = EV_TIMER;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->sig_fd = signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epfd < 0 || d->sig_fd < 0 || d->timer_fd < 0 || add_ev(d, d->sig_fd, &d->ev_sig) ||
	    add_ev(d, d->timer_fd, &d->ev_timer)) {
		snprintf(err, errlen, "event loop: %s", strerror(errno));
		return -1;
	}
	if (hmap_init(&d->by_id, 1024) || hmap_init(&d->by_name, 1024) ||
	    hmap_init(&d->by_pid, 1024)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (api_start(d, err, errlen))
		return -1;
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || add_ev(d, info->epoll_fd, &d->ev_mhd)) {
		snprintf(err, errlen, "HTTP server: no epoll fd");
		return -1;
	}
	d->started_ns = util_now_ns();
	return 0;
}

/* Reap children and handle stop requests. */
static void on_signals(struct wispd *d)
{
	struct signalfd_siginfo si;
	while (read(d->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			d->stopping = true;
		} else if (si.ssi_signo == SIGHUP) {
			log_info(NULL, "SIGHUP ignored (nothing to reload)");
		}
	}
	for (;;) {
		siginfo_t ci = {0};
		if (waitid(P_ALL, 0, &ci, WEXITED | WNOHANG) < 0 || ci.si_pid == 0)
			break;
		int ws = ci.si_code == CLD_EXITED
				 ? (ci.si_status & 0xff) << 8
				 : (ci.si_status & 0x7f) | (ci.si_code == CLD_DUMPED ? 0x80 : 0);
		struct vmm *v = table_find_pid(d, ci.si_pid);
		if (v)
			vmm_on_gone(d, v, ws);
	}
	jails_sweep(d); /* a destroyed VMM's cgroup is empty once it is reaped */
}

/* Info files are for a future wispd, not for anyone waiting now: they are
 * written when wispd is idle, like refills. Written right after a create,
 * they would run just as the new guest starts (often on its CPU). */
static void write_due_info(struct wispd *d)
{
	while (d->info_due) {
		struct vmm *v = d->info_due;
		d->info_due = v->next_due;
		if (v->info_due && !v->gone)
			vmm_write_info(d, v);
		v->info_due = false;
	}
}

static void free_graveyard(struct wispd *d)
{
	while (d->graveyard) {
		struct vmm *v = d->graveyard;
		d->graveyard = v->next_dead;
		vmm_free(v);
	}
}

/* Does any pool class lack shells (and may refill now)? */
static bool pool_wants(struct wispd *d, uint64_t now)
{
	if (d->info_due)
		return true;
	for (int i = 0; i < d->cfg.nr_classes; i++) {
		const struct pool_class *c = &d->cfg.classes[i];
		if (c->ready + c->starting < c->target && now >= c->retry_at_ns)
			return true;
	}
	return false;
}

static void run(struct wispd *d)
{
	uint64_t want_since = 0; /* when the pool started lacking shells */
	while (!d->stopping) {
		MHD_UNSIGNED_LONG_LONG to;
		int timeout = -1;
		if (MHD_get_timeout(d->mhd, &to) == MHD_YES)
			timeout = to > INT_MAX ? INT_MAX : (int)to;
		uint64_t now = util_now_ns();
		bool wants = pool_wants(d, now);
		if (wants && !want_since)
			want_since = now;
		if (wants) {
			uint64_t due = d->busy_ns + REFILL_IDLE_NS;
			if (want_since + REFILL_MAX_WAIT_NS < due)
				due = want_since + REFILL_MAX_WAIT_NS;
			int ms = due > now ? (int)((due - now + 999999) / 1000000) : 0;
			if (timeout < 0 || ms < timeout)
				timeout = ms;
			if (due <= now && !d->creating) {
				write_due_info(d);
				pool_refill(d);
				want_since = 0;
				continue;
			}
		}
		struct epoll_event ev[64];
		int n = epoll_wait(d->epfd, ev, 64, timeout);
		if (n > 0)
			d->busy_ns = util_now_ns();
		for (int i = 0; i < n; i++) {
			enum ev_kind *k = ev[i].data.ptr;
			switch (*k) {
			case EV_SIGNAL:
				on_signals(d);
				break;
			case EV_TIMER: {
				uint64_t ticks;
				if (read(d->timer_fd, &ticks, sizeof(ticks)) < 0)
					break;
				api_poll_followers(d);
				table_expire(d, util_now_ns());
				jails_sweep(d);
				wispd_update_timer(d);
				break;
			}
			case EV_VMM:
				vmm_on_ready(d, (struct vmm *)k, ev[i].events);
				break;
			case EV_MHD:
				break;
			}
		}
		MHD_run(d->mhd);
		free_graveyard(d);
	}
}

/* Stop: VMs keep running (that is the point); shells go (they exit when
 * their connection closes); the API socket goes. */
static void shutdown_daemon(struct wispd *d)
{
	api_stop(d);
	size_t b = 0;
	struct hmap_node *h = hmap_next(&d->by_pid, &b, NULL);
	while (h) {
		struct hmap_node *next = hmap_next(&d->by_pid, &b, h);
		struct vmm *v = (struct vmm *)((char *)h - offsetof(struct vmm, by_pid));
		if (!v->is_vm)
			vmm_destroy(d, v);
		h = next;
	}
	b = 0;
	for (h = hmap_next(&d->by_id, &b, NULL); h; h = hmap_next(&d->by_id, &b, h))
		vmm_close(d, (struct vmm *)((char *)h - offsetof(struct vmm, by_id)));
	unlink(d->cfg.socket_path);
	write_due_info(d);
	free_graveyard(d);
}

/* Tell systemd (Type=notify) that the socket is ready. */
static void notify_systemd(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, path, strlen(path));
	if (a.sun_path[0] == '@')
		a.sun_path[0] = 0; /* abstract socket */
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	sendto(s, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&a,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(s);
}

/* Detach: the parent waits until the child is serving (or failed) and
 * exits with the outcome; returns the fd the child reports on. */
static int daemonize(const char *runtime_dir)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		char msg[512];
		ssize_t n = read(p[0], msg, sizeof(msg) - 1);
		if (n <= 0) {
			log_error(NULL, "the daemon died while starting (see %s/wispd.log)",
				  runtime_dir);
			_exit(WISP_EXIT_ERROR);
		}
		msg[n] = 0;
		bool ok = !strncmp(msg, "ok ", 3);
		/* write(2), not stdio: _exit() would drop a buffer. */
		char line[520];
		int len = snprintf(line, sizeof(line), "%s\n", ok ? msg + 3 : msg);
		if (write(ok ? 1 : 2, line, (size_t)len) < 0)
			_exit(WISP_EXIT_ERROR);
		_exit(ok ? 0 : WISP_EXIT_ERROR);
	}
	close(p[0]);
	setsid();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0)
		dup2(null, 0);
	return p[1];
}

int wispd_main(int argc, char **argv)
{
	static struct wispd d;
	char err[512];
	int r = wispd_parse_args(argc, argv, &d.cfg, err, sizeof(err));
	if (r) {
		if (r > 0) {
			fputs(usage, stdout);
			return 0;
		}
		fprintf(stderr, "wispd: %s\n%s", err, usage);
		return WISP_EXIT_ERROR;
	}
	log_setup("wispd", d.cfg.log_format);
	d.listen_fd = d.lock_fd = d.vms_fd = d.shells_fd = d.run_fd = -1;
	d.jail_fd = d.uids_fd = -1;
	int report = -1;
	if (!d.cfg.foreground) {
		report = daemonize(d.cfg.runtime_dir);
		if (report < 0) {
			log_error(NULL, "cannot detach: %s", strerror(errno));
			return WISP_EXIT_ERROR;
		}
	}
	if (setup(&d, err, sizeof(err))) {
		if (report >= 0)
			dprintf(report, "wispd: %s", err);
		else
			log_error(NULL, "%s", err);
		return WISP_EXIT_ERROR;
	}
	if (report >= 0) {
		/* The log goes to the runtime directory from now on. */
		int log = sec_open_private_file(AT_FDCWD, "wispd.log",
						O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
			close(log);
		}
		dprintf(report, "ok wispd %d listening on %s", (int)getpid(), d.cfg.socket_path);
		close(report);
	}
	adopt_all(&d);
	pool_refill(&d);
	notify_systemd();
	log_info(NULL, "pid %d, listening on %s, runtime directory %s, %u VMs adopted",
		 (int)getpid(), d.cfg.socket_path, d.cfg.runtime_dir, d.nr_vms);
	run(&d);
	log_info(NULL, "stopping; %u VMs keep running", d.nr_vms);
	shutdown_daemon(&d);
	return 0;
}
