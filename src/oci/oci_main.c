/* wisp-oci: the OCI runtime command line (runc's) that podman/conmon,
 * containerd's runc shim and docker call. Each container is one Wisp VM in
 * one host process: `create` forks it (it waits on a FIFO), writes its PID
 * and returns, so the engine's subreaper reaps it and its exit status is
 * the container's; `start` releases it to exec `wisp run --config`.
 * See docs/oci.md. The only file of the layer that prints and exits. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"

static const char *log_path;
static bool log_json;

/* Append one line to --log (json: the lines the engines parse). */
static void log_line(const char *level, const char *msg)
{
	if (!log_path)
		return;
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	char t[64];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (log_json) {
		/* msg is escaped for JSON by hand: quotes, backslashes, controls. */
		char esc[2 * OCI_ERR + 64];
		size_t o = 0;
		for (const char *p = msg; *p && o < sizeof(esc) - 8; p++) {
			unsigned char c = (unsigned char)*p;
			if (c == '"' || c == '\\') {
				esc[o++] = '\\';
				esc[o++] = (char)c;
			} else if (c < 0x20) {
				o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\u%04x", c);
			} else {
				esc[o++] = (char)c;
			}
		}
		esc[o] = 0;
		dprintf(fd, "{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s\"}\n", level, esc, t);
	} else {
		dprintf(fd, "time=\"%s\" level=%s msg=\"%s\"\n", t, level, msg);
	}
	close(fd);
}

/* Print an error on stderr and in --log; exit 1. */
static _Noreturn void die(const char *fmt, ...)
{
	char msg[OCI_ERR + 128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "wisp-oci: %s\n", msg);
	log_line("error", msg);
	exit(1);
}

/* A warning: stderr and --log, and go on. */
static void warn(const char *fmt, ...)
{
	char msg[OCI_ERR + 128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "wisp-oci: warning: %s\n", msg);
	log_line("warning", msg);
}

/* The directory of this executable (Wisp's binaries sit beside it). */
static const char *exe_dir(void)
{
	static char dir[PATH_MAX];
	if (!dir[0]) {
		ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
		if (n <= 0)
			die("cannot find my own executable: %s", strerror(errno));
		dir[n] = 0;
		char *s = strrchr(dir, '/');
		if (s)
			*s = 0;
	}
	return dir;
}

/* $var if set, else the first of the candidates (NULL-terminated, relative
 * to exe_dir()) that exists, else the last. */
static const char *find_file(const char *var, const char *const *cands, char *buf, size_t len)
{
	const char *e = getenv(var);
	if (e && *e)
		return e;
	for (const char *const *c = cands; *c; c++) {
		if (snprintf(buf, len, "%s/%s", exe_dir(), *c) >= (int)len)
			continue;
		if (!access(buf, F_OK))
			break;
	}
	return buf;
}

static const char *const wisp_cands[] = {"wisp", NULL};
/* The server kernel (docs/image.md) runs glibc servers; the plain one
 * busybox. A build tree has them beside wisp-oci or one level up; an
 * installation (PREFIX/libexec/wisp/wisp-oci) in PREFIX/lib/wisp/kernel. */
static const char *const kernel_cands[] = {
	"guest-kernel-server/bzImage", "../guest-kernel-server/bzImage", "guest-kernel/bzImage",
	"../guest-kernel/bzImage",     "../../lib/wisp/kernel/bzImage",	 NULL};

/* The default --root. */
static const char *default_root(void)
{
	static char buf[PATH_MAX];
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (geteuid() != 0 && x && x[0] == '/') {
		snprintf(buf, sizeof(buf), "%s/wisp-oci", x);
		return buf;
	}
	return "/run/wisp-oci";
}

/* A verb's options: --name VALUE, --name=VALUE or boolean --name. */
struct opts {
	const char *bundle, *pid_file, *console_socket, *format;
	bool force, all, detach;
	const char *pos[4];
	int npos;
};

/* Parse a verb's arguments; options the engines send that mean nothing for
 * a VM (--no-pivot, --no-new-keyring, ...) are accepted. */
static void parse_opts(const char *verb, int argc, char **argv, struct opts *o)
{
	static const char *const with_value[] = {
		"bundle",  "b", "pid-file", "console-socket", "format", "f", "preserve-fds", "criu",
		"process", "p", "cwd",	    "user",	      "u",	NULL};
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (a[0] != '-' || !a[1]) {
			if (o->npos == 4)
				die("%s: too many arguments", verb);
			o->pos[o->npos++] = a;
			continue;
		}
		const char *name = a + (a[1] == '-' ? 2 : 1), *val = NULL;
		char key[64];
		const char *eq = strchr(name, '=');
		size_t kl = eq ? (size_t)(eq - name) : strlen(name);
		if (kl >= sizeof(key))
			die("%s: unknown option '%.64s'", verb, a);
		memcpy(key, name, kl);
		key[kl] = 0;
		bool needs = false;
		for (const char *const *w = with_value; *w; w++)
			needs |= !strcmp(key, *w);
		if (needs) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				die("%s: option '--%s' needs a value", verb, key);
		}
		if (!strcmp(key, "bundle") || !strcmp(key, "b"))
			o->bundle = val;
		else if (!strcmp(key, "pid-file"))
			o->pid_file = val;
		else if (!strcmp(key, "console-socket"))
			o->console_socket = val;
		else if (!strcmp(key, "format") || !strcmp(key, "f"))
			o->format = val;
		else if (!strcmp(key, "force") || !strcmp(key, "f"))
			o->force = true;
		else if (!strcmp(key, "all") || !strcmp(key, "a"))
			o->all = true;
		else if (!strcmp(key, "detach") || !strcmp(key, "d"))
			o->detach = true;
		else if (!strcmp(key, "no-pivot") || !strcmp(key, "no-new-keyring") ||
			 !strcmp(key, "preserve-fds") || !strcmp(key, "no-subreaper") ||
			 !strcmp(key, "criu") || !strcmp(key, "process") || !strcmp(key, "p") ||
			 !strcmp(key, "cwd") || !strcmp(key, "user") || !strcmp(key, "u") ||
			 !strcmp(key, "tty") || !strcmp(key, "t"))
			continue;
		else
			die("%s: unknown option '%.64s'", verb, a);
	}
}

/* The container ID: the first positional argument, checked. */
static const char *want_id(const char *verb, const struct opts *o)
{
	char err[OCI_ERR];
	if (o->npos < 1)
		die("%s: a container ID is required", verb);
	if (oci_id_check(o->pos[0], err, sizeof(err)))
		die("%s", err);
	return o->pos[0];
}

/* A signal by number, or by name with or without SIG. */
static int parse_signal(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = {
		{"HUP", SIGHUP},   {"INT", SIGINT},	  {"QUIT", SIGQUIT}, {"ILL", SIGILL},
		{"TRAP", SIGTRAP}, {"ABRT", SIGABRT},	  {"IOT", SIGIOT},   {"BUS", SIGBUS},
		{"FPE", SIGFPE},   {"KILL", SIGKILL},	  {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
		{"USR2", SIGUSR2}, {"PIPE", SIGPIPE},	  {"ALRM", SIGALRM}, {"TERM", SIGTERM},
		{"CHLD", SIGCHLD}, {"CONT", SIGCONT},	  {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
		{"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},	  {"URG", SIGURG},   {"XCPU", SIGXCPU},
		{"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
		{"IO", SIGIO},	   {"PWR", SIGPWR},	  {"SYS", SIGSYS}};
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n >= 1 && n < 65 ? (int)n : -1;
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!strcasecmp(s, sigs[i].name))
			return sigs[i].sig;
	return -1;
}

/* Open --root, or die with its reason. */
static int root_or_die(const char *root)
{
	char err[OCI_ERR];
	int fd = oci_root_open(root, err, sizeof(err));
	if (fd < 0)
		die("%s", err);
	return fd;
}

/* Open and lock a container's directory and read its record, or die. */
static int load_or_die(int rootfd, const char *id, struct oci_state *st)
{
	char err[OCI_ERR];
	int dirfd = oci_dir_open(rootfd, id, err, sizeof(err));
	if (dirfd < 0)
		die("%s", err);
	if (oci_state_read(dirfd, st, err, sizeof(err)))
		die("container \"%s\": %s", id, err);
	return dirfd;
}

/* Save the record, or die. */
static void save_or_die(int dirfd, const struct oci_state *st)
{
	char err[OCI_ERR];
	if (oci_state_write(dirfd, st, err, sizeof(err)))
		die("container \"%s\": %s", st->id, err);
}

/* Wait until the VMM is gone (or a zombie): up to ms milliseconds. */
static bool wait_gone(const struct oci_state *st, int ms)
{
	for (int i = 0; i < ms / 5; i++) {
		if (!oci_state_alive(st))
			return true;
		usleep(5000);
	}
	return !oci_state_alive(st);
}

/* Single-quote a word for `wisp image build --cmd` (shell-like split). */
static void quote_word(char *out, size_t len, size_t *o, const char *w)
{
	if (*o + 2 < len)
		out[(*o)++] = '\'';
	for (; *w && *o + 6 < len; w++) {
		if (*w == '\'') {
			memcpy(out + *o, "'\\''", 4);
			*o += 4;
		} else {
			out[(*o)++] = *w;
		}
	}
	if (*o + 2 < len)
		out[(*o)++] = '\'';
	out[(*o)++] = ' ';
	out[*o] = 0;
}

/* `wisp image build --rootfs` the bundle's rootfs into out, with
 * process.args/env/cwd/user for its init. */
static int build_linux_image(const struct oci_spec *spec, const char *out, char *err, size_t errlen)
{
	char wisp[PATH_MAX], cmd[65536], user[32];
	size_t o = 0;
	const char *wispbin = find_file("WISP_OCI_WISP", wisp_cands, wisp, sizeof(wisp));
	cmd[0] = 0;
	for (int i = 0; i < spec->nargs; i++)
		quote_word(cmd, sizeof(cmd), &o, spec->args[i]);
	if (o >= sizeof(cmd) - 8) {
		snprintf(err, errlen, "process.args: too long for a Linux image");
		return -E2BIG;
	}
	snprintf(user, sizeof(user), "%u:%u", spec->uid, spec->gid);
	int n = 0;
	for (char **e = spec->env; e && *e; e++)
		n++;
	char **argv = calloc((size_t)(2 * n + 20), sizeof(char *));
	int a = 0;
	argv[a++] = (char *)wispbin;
	argv[a++] = "image";
	argv[a++] = "build";
	argv[a++] = "--rootfs";
	argv[a++] = spec->rootfs;
	argv[a++] = "--cmd";
	argv[a++] = cmd;
	argv[a++] = "--workdir";
	argv[a++] = spec->cwd;
	argv[a++] = "--user";
	argv[a++] = user;
	for (char **e = spec->env; e && *e; e++) {
		argv[a++] = "--env";
		argv[a++] = *e;
	}
	argv[a++] = "-q";
	argv[a++] = "-o";
	argv[a++] = (char *)out;
	int p[2];
	if (!argv || pipe2(p, O_CLOEXEC)) {
		free(argv);
		snprintf(err, errlen, "building the VM image: %s", strerror(errno));
		return -EIO;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "building the VM image: fork: %s", strerror(errno));
		return -EIO;
	}
	if (pid == 0) {
		dup2(p[1], 2);
		int nul = open("/dev/null", O_RDWR);
		dup2(nul, 0);
		dup2(nul, 1);
		execv(wispbin, argv);
		dprintf(2, "wisp: '%s': %s\n", wispbin, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	char why[2048];
	ssize_t got = 0, k;
	while ((k = read(p[0], why + got, sizeof(why) - 1 - (size_t)got)) > 0 &&
	       got < (ssize_t)sizeof(why) - 1)
		got += k;
	why[got > 0 ? got : 0] = 0;
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	free(argv);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		char *nl = strrchr(why, '\n');
		while (nl && nl[1] == 0 && nl > why) {
			*nl = 0;
			nl = strrchr(why, '\n');
		}
		snprintf(err, errlen, "building the VM image from the rootfs: %.400s",
			 nl	  ? nl + 1
			 : why[0] ? why
				  : "failed");
		return -EIO;
	}
	return 0;
}

/* What a container becomes. */
enum kind { KIND_UNIKERNEL, KIND_LINUX, KIND_SANDBOX };
static const char *const kind_name[] = {"unikernel", "linux", "sandbox"};

/* The container's process: set up, then exec `wisp run --config`, which
 * builds the VM, reports to create and waits on the FIFO for `start`; a
 * pod sandbox waits on the FIFO itself and execs its pause process. Never
 * returns. */
static _Noreturn void vmm_child(int dirfd, int rootfd, int status_fd, int image_fd, int console_fd,
				const struct oci_spec *spec, enum kind kind, const char *dir,
				const char *initrd)
{
	char err[OCI_ERR] = "";
	char wisp[PATH_MAX], kernel[PATH_MAX];
	int fifo, conf;

	setsid();
	signal(SIGPIPE, SIG_DFL);
	if (console_fd >= 0) {
		dup2(console_fd, 0);
		dup2(console_fd, 1);
		dup2(console_fd, 2);
		ioctl(0, TIOCSCTTY, 0);
	}
	if (spec->netns && oci_netns_enter(spec->netns, err, sizeof(err)))
		goto fail;
	if (kind == KIND_LINUX) {
		struct oci_net net = {0};
		if (spec->netns && oci_net_setup("wisp0", spec->hostname, spec->resolv_conf, &net,
						 err, sizeof(err)))
			goto fail;
		const char *k = find_file("WISP_OCI_KERNEL", kernel_cands, kernel, sizeof(kernel));
		if (oci_vmconf_linux(dirfd, dir, spec, k, initrd, net.cmdline,
				     spec->netns ? net.tap : NULL, net.mac, err, sizeof(err)))
			goto fail;
	}
	fifo = openat(dirfd, "start", O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	conf = kind == KIND_SANDBOX ? 0 : openat(dirfd, "vm.json", O_RDONLY | O_NOFOLLOW);
	if (fifo < 0 || conf < 0) {
		snprintf(err, sizeof(err), "opening the start FIFO or vm.json: %s",
			 strerror(errno));
		goto fail;
	}
	close(dirfd); /* releases create's lock once create closes its copy */
	close(rootfd);
	if (image_fd >= 0)
		fcntl(image_fd, F_SETFD, 0);
	if (kind != KIND_SANDBOX) {
		/* The split toolstack: `wisp run` builds the VM now, says so on
		 * status_fd (a NUL byte, or its error line) and starts the guest
		 * when `start` writes to the FIFO. */
		char confpath[64], ready[16], start[16];
		snprintf(confpath, sizeof(confpath), "/proc/self/fd/%d", conf);
		snprintf(ready, sizeof(ready), "%d", status_fd);
		snprintf(start, sizeof(start), "%d", fifo);
		fcntl(status_fd, F_SETFD, 0);
		fcntl(fifo, F_SETFD, 0);
		const char *w = find_file("WISP_OCI_WISP", wisp_cands, wisp, sizeof(wisp));
		execl(w, "wisp", "run", "--config", confpath, "--ready-fd", ready, "--start-fd",
		      start, (char *)NULL);
		snprintf(err, sizeof(err), "exec '%s': %s", w, strerror(errno));
		goto fail;
	}
	close(status_fd); /* EOF: all is well */
	struct pollfd pfd = {.fd = fifo, .events = POLLIN};
	char c;
	while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
		;
	if (read(fifo, &c, 1) != 1)
		_exit(1); /* start never came: deleted */
	close(fifo);
	/* A pod's pause process only holds the pod's namespaces: it runs
	 * natively, in its rootfs, in the pod's network namespace. */
	if (chroot(spec->rootfs) || chdir("/")) {
		dprintf(2, "wisp-oci: sandbox rootfs '%s': %s\n", spec->rootfs, strerror(errno));
		_exit(127);
	}
	static char *const empty[] = {NULL};
	execvpe(spec->args[0], spec->args, spec->env ? spec->env : empty);
	dprintf(2, "wisp-oci: sandbox '%s': %s\n", spec->args[0], strerror(errno));
	_exit(127);
fail:
	if (write(status_fd, err, strlen(err)) < 0)
		_exit(2);
	_exit(1);
}

/* create --bundle B --pid-file P [--console-socket S] ID */
static int cmd_create(const char *root, int argc, char **argv)
{
	struct opts o;
	struct oci_spec spec;
	struct oci_state st;
	char err[OCI_ERR], initrd[PATH_MAX] = "", dir[PATH_MAX];
	int rootfd, dirfd, image_fd, uni, console_fd = -1, p[2];
	enum kind kind;

	parse_opts("create", argc, argv, &o);
	const char *id = want_id("create", &o);
	if (oci_spec_load(o.bundle, &spec, err, sizeof(err)))
		die("%s", err);
	image_fd = oci_image_open(&spec, err, sizeof(err));
	if (image_fd < 0)
		die("%s", err);
	uni = oci_image_is_unikernel(image_fd, err, sizeof(err));
	if (uni < 0)
		die("process.args[0] '%.200s': %s", spec.args[0], err);
	kind = uni ? KIND_UNIKERNEL : spec.cri_sandbox ? KIND_SANDBOX : KIND_LINUX;
	if (!uni) {
		close(image_fd);
		image_fd = -1;
	}
	if (spec.terminal && !o.console_socket)
		die("process.terminal is true but no --console-socket was given");
	if (o.pid_file && strlen(o.pid_file) >= PATH_MAX - 32)
		die("--pid-file: path too long");
	rootfd = root_or_die(root);
	snprintf(dir, sizeof(dir), "%s/%s", root, id);
	if (mkdirat(rootfd, id, 0700)) {
		if (errno == EEXIST)
			die("container with id exists: %s", id);
		die("container \"%s\": state directory: %s", id, strerror(errno));
	}
	dirfd = oci_dir_open(rootfd, id, err, sizeof(err));
	if (dirfd < 0)
		die("%s", err);
	if (mkfifoat(dirfd, "start", 0600))
		goto fail_errno;
	if (uni) {
		if (oci_vmconf_unikernel(dirfd, &spec, image_fd, err, sizeof(err)))
			goto fail;
	} else if (kind == KIND_LINUX) {
		char key[33], wisp[PATH_MAX], tinit[PATH_MAX];
		static const char *const tinit_cands[] = {"tinit", "../tinit", NULL};
		const char *tools[] = {find_file("WISP_OCI_WISP", wisp_cands, wisp, sizeof(wisp)),
				       find_file("WISP_TINIT", tinit_cands, tinit, sizeof(tinit)),
				       "/bin/busybox", NULL};
		/* Bind mounts: a disk each, copied now (docs/oci.md). */
		if (oci_disks_build(dirfd, &spec, err, sizeof(err)))
			goto fail;
		snprintf(initrd, sizeof(initrd), "%s/%s/image.lz4", root, id);
		bool cached = getenv("WISP_OCI_NO_CACHE") == NULL;
		if (cached && oci_imgcache_key(&spec, tools, key, err, sizeof(err)))
			goto fail;
		if (!cached || oci_imgcache_get(rootfd, key, dirfd, "image.lz4")) {
			if (build_linux_image(&spec, initrd, err, sizeof(err)))
				goto fail;
			if (cached)
				oci_imgcache_put(rootfd, key, dirfd, "image.lz4");
		}
	}
	if (spec.terminal &&
	    (console_fd = oci_console_setup(o.console_socket, err, sizeof(err))) < 0)
		goto fail;
	if (pipe2(p, O_CLOEXEC))
		goto fail_errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		goto fail_errno;
	if (pid == 0) {
		close(p[0]);
		vmm_child(dirfd, rootfd, p[1], image_fd, console_fd, &spec, kind, dir, initrd);
	}
	close(p[1]);
	if (console_fd >= 0)
		close(console_fd);
	/* A VM's `wisp run` writes one NUL byte once the VM is built, or its
	 * error line; a sandbox closes the pipe when all is well. */
	ssize_t n;
	do
		n = read(p[0], err, sizeof(err) - 1);
	while (n < 0 && errno == EINTR);
	close(p[0]);
	bool ready = kind == KIND_SANDBOX ? n == 0 : n == 1 && err[0] == 0;
	if (!ready) {
		if (n > 0 && err[0])
			err[n] = 0;
		else
			snprintf(err, sizeof(err),
				 "container \"%s\": its VMM ended before the VM was built", id);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto fail;
	}
	memset(&st, 0, sizeof(st));
	snprintf(st.id, sizeof(st.id), "%s", id);
	st.bundle = spec.bundle;
	st.annotations_json = spec.annotations_json;
	st.pid = pid;
	st.starttime = oci_proc_starttime(pid);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	st.created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	snprintf(st.kind, sizeof(st.kind), "%s", kind_name[kind]);
	st.netns = kind == KIND_LINUX ? spec.netns : NULL;
	snprintf(st.tap, sizeof(st.tap), "%s", kind == KIND_LINUX && spec.netns ? "wisp0" : "");
	if (oci_state_write(dirfd, &st, err, sizeof(err)))
		goto fail_kill;
	char *sj = oci_state_json(&st, false);
	if (!sj || oci_hooks_run(&spec, OCI_HOOK_PRESTART, sj, err, sizeof(err)) ||
	    oci_hooks_run(&spec, OCI_HOOK_CREATE_RUNTIME, sj, err, sizeof(err))) {
		free(sj);
		goto fail_kill;
	}
	free(sj);
	if (o.pid_file) {
		char pidbuf[32];
		int len = snprintf(pidbuf, sizeof(pidbuf), "%d", (int)pid);
		if (oci_write_atomic(AT_FDCWD, o.pid_file, pidbuf, (size_t)len, err, sizeof(err)))
			goto fail_kill;
	}
	oci_spec_free(&spec);
	return 0;

fail_kill:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	goto fail;
fail_errno:
	snprintf(err, sizeof(err), "container \"%s\": %s", id, strerror(errno));
fail:
	if (spec.netns && kind == KIND_LINUX) {
		char e2[OCI_ERR];
		oci_net_teardown(spec.netns, "wisp0", e2, sizeof(e2));
	}
	{
		char e2[OCI_ERR];
		close(dirfd);
		oci_dir_remove(rootfd, id, e2, sizeof(e2));
	}
	die("%s", err);
}

/* Reload the bundle's hooks for poststart/poststop (the bundle may be gone). */
static void run_late_hooks(const struct oci_state *st, enum oci_hook_kind kind)
{
	struct oci_spec spec;
	char err[OCI_ERR];
	if (oci_spec_load(st->bundle, &spec, err, sizeof(err)))
		return;
	if (spec.nhooks[kind]) {
		char *sj = oci_state_json(st, false);
		if (sj && oci_hooks_run(&spec, kind, sj, err, sizeof(err)))
			warn("%s", err);
		free(sj);
	}
	oci_spec_free(&spec);
}

/* start ID */
static int cmd_start(const char *root, int argc, char **argv)
{
	struct opts o;
	struct oci_state st;
	parse_opts("start", argc, argv, &o);
	const char *id = want_id("start", &o);
	int dirfd = load_or_die(root_or_die(root), id, &st);
	const char *status = oci_state_status(&st);
	if (strcmp(status, "created"))
		die("cannot start container \"%s\": it is %s, not created", id,
		    !strcmp(status, "stopped") ? "stopped (not running)" : status);
	int fd = openat(dirfd, "start", O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || write(fd, "s", 1) != 1)
		die("cannot start container \"%s\": its VMM is not running (%s)", id,
		    strerror(errno));
	close(fd);
	st.started = true;
	save_or_die(dirfd, &st);
	run_late_hooks(&st, OCI_HOOK_POSTSTART);
	oci_state_free(&st);
	return 0;
}

/* state ID */
static int cmd_state(const char *root, int argc, char **argv)
{
	struct opts o;
	struct oci_state st;
	parse_opts("state", argc, argv, &o);
	const char *id = want_id("state", &o);
	load_or_die(root_or_die(root), id, &st);
	char *s = oci_state_json(&st, true);
	if (!s)
		die("out of memory");
	puts(s);
	free(s);
	oci_state_free(&st);
	return 0;
}

/* kill [--all] ID [SIGNAL] */
static int cmd_kill(const char *root, int argc, char **argv)
{
	struct opts o;
	struct oci_state st;
	parse_opts("kill", argc, argv, &o);
	const char *id = want_id("kill", &o);
	int sig = o.npos > 1 ? parse_signal(o.pos[1]) : SIGTERM;
	if (sig < 0)
		die("kill: '%.32s' is not a signal", o.pos[1]);
	load_or_die(root_or_die(root), id, &st);
	if (!oci_state_alive(&st))
		die("cannot kill container \"%s\": container not running", id);
	if (kill(st.pid, sig))
		die("container \"%s\": container not running (%s)", id, strerror(errno));
	/* A paused VM (SIGSTOP) must continue to act on the signal. */
	if (st.paused && sig != SIGSTOP && sig != SIGCONT)
		kill(st.pid, SIGCONT);
	oci_state_free(&st);
	return 0;
}

/* pause ID / resume ID: the VMM process stops (every vCPU with it) */
static int cmd_pause(const char *root, int argc, char **argv, bool pause)
{
	struct opts o;
	struct oci_state st;
	const char *verb = pause ? "pause" : "resume";
	parse_opts(verb, argc, argv, &o);
	const char *id = want_id(verb, &o);
	int dirfd = load_or_die(root_or_die(root), id, &st);
	const char *status = oci_state_status(&st);
	if (strcmp(status, pause ? "running" : "paused"))
		die("cannot %s container \"%s\": it is %s%s", verb, id, status,
		    !strcmp(status, "stopped") ? " (not running)" : "");
	if (kill(st.pid, pause ? SIGSTOP : SIGCONT))
		die("container \"%s\": container not running (%s)", id, strerror(errno));
	/* Return once it is done, as runc does once the cgroup is frozen: a
	 * signal is delivered asynchronously. */
	for (int i = 0; i < 400 && (oci_proc_state(st.pid) == 'T') != pause && oci_state_alive(&st);
	     i++)
		usleep(5000);
	st.paused = pause;
	save_or_die(dirfd, &st);
	oci_state_free(&st);
	return 0;
}

/* delete [--force] ID */
static int cmd_delete(const char *root, int argc, char **argv)
{
	struct opts o;
	struct oci_state st;
	char err[OCI_ERR];
	parse_opts("delete", argc, argv, &o);
	const char *id = want_id("delete", &o);
	int rootfd = root_or_die(root);
	int dirfd = oci_dir_open(rootfd, id, err, sizeof(err));
	if (dirfd < 0)
		die("%s", err);
	if (oci_state_read(dirfd, &st, err, sizeof(err))) {
		if (!o.force)
			die("container \"%s\": %s (delete --force removes it)", id, err);
		if (oci_dir_remove(rootfd, id, err, sizeof(err)))
			die("%s", err);
		return 0;
	}
	const char *status = oci_state_status(&st);
	if (strcmp(status, "stopped")) {
		/* Like runc: a created container (no guest code has run) goes
		 * without --force; a running or paused one needs it. */
		if (!o.force && strcmp(status, "created"))
			die("cannot delete container \"%s\" that is not stopped: %s", id, status);
		kill(st.pid, SIGKILL);
		kill(st.pid, SIGCONT);
		if (!wait_gone(&st, 10000))
			die("container \"%s\": its VMM (pid %d) did not die after SIGKILL", id,
			    (int)st.pid);
	}
	if (st.netns && st.tap[0])
		oci_net_teardown(st.netns, st.tap, err, sizeof(err));
	run_late_hooks(&st, OCI_HOOK_POSTSTOP);
	oci_state_free(&st);
	if (oci_dir_remove(rootfd, id, err, sizeof(err)))
		die("%s", err);
	return 0;
}

/* ps [--format json|table] ID */
static int cmd_ps(const char *root, int argc, char **argv)
{
	struct opts o;
	struct oci_state st;
	parse_opts("ps", argc, argv, &o);
	const char *id = want_id("ps", &o);
	load_or_die(root_or_die(root), id, &st);
	bool alive = oci_state_alive(&st);
	if (o.format && !strcmp(o.format, "json")) {
		if (alive)
			printf("[%d]\n", (int)st.pid);
		else
			printf("[]\n");
	} else if (!o.format || !strcmp(o.format, "table")) {
		printf("PID\n");
		if (alive)
			printf("%d\n", (int)st.pid);
	} else {
		die("ps: --format must be json or table");
	}
	oci_state_free(&st);
	return 0;
}

/* features (runtime-spec features.md) */
static int cmd_features(void)
{
	printf("{\n"
	       "  \"ociVersionMin\": \"1.0.0\",\n"
	       "  \"ociVersionMax\": \"%s\",\n"
	       "  \"hooks\": [\"prestart\", \"createRuntime\", \"poststart\", \"poststop\"],\n"
	       "  \"mountOptions\": [],\n"
	       "  \"linux\": {\n"
	       "    \"namespaces\": [\"network\"],\n"
	       "    \"capabilities\": [],\n"
	       "    \"cgroup\": {\"v1\": false, \"v2\": false, \"systemd\": false, "
	       "\"systemdUser\": false},\n"
	       "    \"seccomp\": {\"enabled\": false},\n"
	       "    \"apparmor\": {\"enabled\": false},\n"
	       "    \"selinux\": {\"enabled\": false}\n"
	       "  },\n"
	       "  \"annotations\": {\"org.wisp.runtime\": \"a Wisp VM per container "
	       "(docs/oci.md)\"}\n"
	       "}\n",
	       OCI_VERSION);
	return 0;
}

/* Print usage. */
static void usage(FILE *f)
{
	fprintf(f, "usage: wisp-oci [--root DIR] [--log FILE] [--log-format text|json] "
		   "[--systemd-cgroup] VERB ...\n"
		   "  create --bundle DIR [--pid-file FILE] [--console-socket SOCK] ID\n"
		   "  start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID\n"
		   "  pause ID | resume ID | ps [--format json|table] ID | features | --version\n"
		   "--systemd-cgroup, --debug, --criu PATH and --rootless VALUE are accepted and "
		   "ignored.\n"
		   "Each container is a Wisp VM (wisp-oci(1), docs/oci.md).\n");
}

/* Global flags, then the verb. */
int main(int argc, char **argv)
{
	const char *root = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		char *a = argv[i], *eq = strchr(a, '=');
		size_t kl = eq ? (size_t)(eq - a) : strlen(a);
#define IS(s) (kl == strlen(s) && !strncmp(a, s, kl))
		const char *val = NULL;
		if (IS("--root") || IS("--log") || IS("--log-format") || IS("--criu") ||
		    IS("--rootless")) {
			val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (!val)
				die("option '%.*s' needs a value", (int)kl, a);
		}
		if (IS("--root"))
			root = val;
		else if (IS("--log"))
			log_path = val;
		else if (IS("--log-format")) {
			if (strcmp(val, "json") && strcmp(val, "text"))
				die("--log-format must be text or json");
			log_json = !strcmp(val, "json");
		} else if (IS("--version") || IS("-v")) {
			printf("wisp-oci version %s\nspec: %s\n", WISP_VERSION, OCI_VERSION);
			return 0;
		} else if (IS("--help") || IS("-h")) {
			usage(stdout);
			return 0;
		} else if (IS("--systemd-cgroup") || IS("--debug") || IS("--criu") ||
			   IS("--rootless")) {
			continue; /* a VM has no container cgroup of its own to place */
		} else {
			die("unknown global option '%.64s'", a);
		}
#undef IS
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!root)
		root = default_root();
	const char *verb = argv[i];
	int n = argc - i - 1;
	char **rest = argv + i + 1;
	if (!strcmp(verb, "create"))
		return cmd_create(root, n, rest);
	if (!strcmp(verb, "start"))
		return cmd_start(root, n, rest);
	if (!strcmp(verb, "state"))
		return cmd_state(root, n, rest);
	if (!strcmp(verb, "kill"))
		return cmd_kill(root, n, rest);
	if (!strcmp(verb, "delete"))
		return cmd_delete(root, n, rest);
	if (!strcmp(verb, "pause"))
		return cmd_pause(root, n, rest, true);
	if (!strcmp(verb, "resume"))
		return cmd_pause(root, n, rest, false);
	if (!strcmp(verb, "ps"))
		return cmd_ps(root, n, rest);
	if (!strcmp(verb, "features"))
		return cmd_features();
	if (!strcmp(verb, "version")) {
		printf("wisp-oci version %s\nspec: %s\n", WISP_VERSION, OCI_VERSION);
		return 0;
	}
	if (!strcmp(verb, "exec"))
		die("exec: not supported: a Wisp container is a VM running one program; there is "
		    "no second process "
		    "to start in it");
	if (!strcmp(verb, "checkpoint") || !strcmp(verb, "restore"))
		die("%s: not supported by wisp-oci", verb);
	die("unknown command '%.64s' (wisp-oci --help lists them)", verb);
}
