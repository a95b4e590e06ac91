/* Starting a VMM process (pool.c decides which and when). Alone in its file
 * so that the fuzz targets can link a fake VMM in its place: wispd's code
 * above it then runs unchanged, with no process and no KVM. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/wispd.h"

extern char **environ;

/* Spawn argv with fds[i] as fd 3 + i (the first nfd; -1: none there) and
 * no other fd of ours. */
static int spawn(char *const argv[], const int *fds, int nfd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	for (int i = 0; i < nfd; i++)
		if (fds[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, fds[i], 3 + i);
	/* Nothing else of ours reaches the child. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3 + nfd);
	posix_spawnattr_init(&at);
	/* Own session: a terminal's ^C for wispd must not reach the VMs.
	 * wispd blocks signals for its signalfd: the VMM must not inherit that. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
					      POSIX_SPAWN_SETSIGDEF);
	sigset_t none, def;
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGCHLD);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	int r = posix_spawn(pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return r;
}

int transport_spawn_process(char *const argv[], int *chan)
{
	int sv[2];
	pid_t pid;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	int r = spawn(argv, &sv[0], 1, &pid);
	close(sv[0]);
	if (r) {
		close(sv[1]);
		return -r;
	}
	*chan = sv[1];
	return 0;
}

int vmm_spawn_process(char *const argv[], int keep_fd, int extra_fd, pid_t *pid, int *fd)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	int fds[3] = {sv[1], keep_fd, extra_fd}, nfd = 1;
	if (keep_fd >= 0)
		nfd = 2;
	if (extra_fd >= 0) {
		fds[nfd] = extra_fd; /* 4 without keep_fd, else 5 */
		nfd++;
	}
	int r = spawn(argv, fds, nfd, pid);
	close(sv[1]);
	if (r) {
		close(sv[0]);
		return -r;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	*fd = sv[0];
	return 0;
}
