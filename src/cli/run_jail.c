/* `wisp run --jail`: the VM runs in a child jailed like a daemon VMM
 * (security/jail.c, docs/security.md); this process stays outside as its
 * supervisor, as root: it claims the uid, makes the jail directory and the
 * cgroup, passes on the signals it gets, waits, cleans up and exits with
 * the child's code. The child enters its mount namespace at once (while
 * single-threaded) and the jail proper once the VM is built. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cli/cli.h"
#include "control/ctl_proto.h"
#include "security/security.h"
#include "util/util.h"
#include "vmm/config.h"

static struct {
	struct jail jail;
	char dir[600], cgroup[600], cg_base[256], name[32];
	bool entered;
} rj;

static pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* Wait for the child; its exit code, 128+N for a signal. */
static int supervise(void)
{
	struct sigaction sa = {.sa_handler = forward};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* A terminal's ^C reaches the child itself (same process group). */
	signal(SIGINT, SIG_IGN);
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			return WISP_EXIT_ERROR;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Open (making them) <runtime-dir>/jail and its uids/ as root. */
static int jail_dirs(char *rt, size_t rtlen, int *jail_fd, int *uids_fd, char *err, size_t errlen)
{
	ctl_default_runtime_dir(rt, rtlen);
	int r = mkdir(rt, 0711) < 0 && errno != EEXIST ? -errno : 0;
	int run_fd = r ? -1 : open(rt, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	*jail_fd = *uids_fd = -1;
	if (run_fd < 0 || (mkdirat(run_fd, "jail", 0711) < 0 && errno != EEXIST) ||
	    (*jail_fd = openat(run_fd, "jail", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
		    0 ||
	    (mkdirat(*jail_fd, "uids", 0700) < 0 && errno != EEXIST) ||
	    (*uids_fd = openat(*jail_fd, "uids", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) <
		    0) {
		int e = r ? -r : errno;
		snprintf(err, errlen, "--jail: %.200s/jail: %s", rt, strerror(e));
		if (run_fd >= 0)
			close(run_fd);
		return -e;
	}
	close(run_fd);
	return 0;
}

int run_jail_start(struct run_config *cfg, int *code)
{
	char err[WISP_ERRLEN], rt[256];
	*code = WISP_EXIT_ERROR;
	if (geteuid() != 0) {
		fprintf(stderr, "wisp: --jail needs root (a uid of its own, a mount namespace and "
				"a cgroup for the VMM; docs/security.md)\n");
		return 1;
	}
	int jail_fd, uids_fd;
	if (jail_dirs(rt, sizeof(rt), &jail_fd, &uids_fd, err, sizeof(err))) {
		fprintf(stderr, "wisp: %s\n", err);
		return 1;
	}
	struct jail_range range = {JAIL_UID_FIRST, JAIL_UID_LAST};
	uint32_t hint = (uint32_t)getpid();
	uid_t uid;
	int lock = jail_claim_uid(uids_fd, &range, &hint, &uid);
	close(uids_fd);
	if (lock < 0) {
		fprintf(stderr, "wisp: --jail: no free uid in %u-%u: %s\n", range.first, range.last,
			lock == -EUSERS ? "all taken" : strerror(-lock));
		close(jail_fd);
		return 1;
	}
	snprintf(rj.name, sizeof(rj.name), "run-%d", (int)getpid());
	snprintf(rj.dir, sizeof(rj.dir), "%s/jail/%s", rt, rj.name);
	if (mkdirat(jail_fd, rj.name, 0700) < 0) {
		fprintf(stderr, "wisp: --jail: %s: %s\n", rj.dir, strerror(errno));
		close(jail_fd);
		close(lock);
		return 1;
	}
	/* Limits: the guest's memory (a snapshot's is at most its file's
	 * size), one CPU per vCPU. */
	uint64_t mem = cfg->vm.mem;
	struct stat st;
	if (!mem && cfg->restore && stat(cfg->restore, &st) == 0)
		mem = (uint64_t)st.st_size;
	struct jail_limits l;
	bool asked = false;
	if (cfg->restore)
		jail_limits_default(&l, mem ? mem : WISP_MAX_MEM, 1);
	else
		asked = vm_config_limits(&cfg->vm, &l);
	if (jail_cgroup_init(rj.cg_base, sizeof(rj.cg_base), err, sizeof(err)) == 0 &&
	    jail_cgroup_create(rj.cg_base, rj.name, &l, err, sizeof(err)) == 0) {
		snprintf(rj.cgroup, sizeof(rj.cgroup), "%s/%s", rj.cg_base, rj.name);
	} else if (asked) { /* the configuration asked for limits: not without them */
		fprintf(stderr, "wisp: --jail: the configuration sets limits, but: %s\n", err);
		unlinkat(jail_fd, rj.name, AT_REMOVEDIR);
		close(jail_fd);
		close(lock);
		return 1;
	} else {
		fprintf(stderr, "wisp: --jail: no cgroup limits: %s\n", err);
		rj.cg_base[0] = 0;
	}
	rj.jail = (struct jail){
		.uid = uid, .gid = uid, .dir = rj.dir, .cgroup = rj.cgroup[0] ? rj.cgroup : NULL};
	fflush(NULL);
	child = fork();
	if (child == 0) { /* the VMM: keeps the uid's lock for its life */
		/* Nothing we inherited but stdio and the lock reaches the jail. */
		if (lock > 3)
			close_range(3, (unsigned)lock - 1, 0);
		close_range((unsigned)lock + 1, ~0u, 0);
		if (jail_prepare(&rj.jail, err, sizeof(err))) {
			fprintf(stderr, "wisp: %s\n", err);
			_exit(WISP_EXIT_ERROR);
		}
		return 0;
	}
	close(lock);
	if (child < 0) {
		fprintf(stderr, "wisp: --jail: fork: %s\n", strerror(errno));
		*code = WISP_EXIT_ERROR;
	} else {
		*code = supervise();
	}
	unlinkat(jail_fd, rj.name, AT_REMOVEDIR);
	close(jail_fd);
	if (rj.cg_base[0])
		jail_cgroup_remove(rj.cg_base, rj.name);
	/* The jailed child could not remove its control socket. */
	char sock[256];
	if (cfg->name && run_control_path(cfg->name, sock, sizeof(sock)) == 0 &&
	    lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sock);
	return 1;
}

int run_jail_enter(struct vm *vm, const struct run_config *cfg, char *err, size_t errlen)
{
	if (!cfg->jail || rj.entered)
		return 0;
	/* The console is reopened through /proc/self/fd first: once we are
	 * another uid, the terminal would not let us. */
	vm_console_open(vm);
	rj.entered = true;
	return jail_enter(&rj.jail, err, errlen);
}
