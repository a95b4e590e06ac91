/* OCI hooks: each is run with the container's state JSON on its stdin
 * (docker's networking is one: libnetwork-setkey). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"

/* The hook kind's name in config.json. */
const char *oci_hook_name(enum oci_hook_kind kind)
{
	static const char *const names[] = {"prestart", "createRuntime", "poststart", "poststop"};
	return kind < OCI_HOOK_KINDS ? names[kind] : "?";
}

/* Run one hook; 0 if it exited 0 within its timeout. */
static int hook_run(const struct oci_hook *h, const char *name, const char *state, char *err,
		    size_t errlen)
{
	int p[2];
	pid_t pid;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid == 0) {
		static char *const empty[] = {NULL};
		dup2(p[0], 0);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 1); /* stdout belongs to the container */
		execve(h->path, h->args, h->env ? h->env : empty);
		dprintf(2, "wisp-oci: %s hook '%s': %s\n", name, h->path, strerror(errno));
		_exit(127);
	}
	close(p[0]);
	/* The state is small (< 64 KiB, a pipe's buffer): one write; a hook
	 * that never reads must not block us. */
	signal(SIGPIPE, SIG_IGN);
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	if (write(p[1], state, strlen(state)) < 0) {
		/* The hook may not read its stdin at all: not an error. */
	}
	close(p[1]);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int status;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return -errno;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (h->timeout && now.tv_sec - t0.tv_sec >= h->timeout) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(err, errlen, "%s hook '%.200s': timed out after %d s", name,
				 h->path, h->timeout);
			return -ETIMEDOUT;
		}
		usleep(2000);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(err, errlen, "%s hook '%.200s': exit status %d", name, h->path,
			 WEXITSTATUS(status));
	else
		snprintf(err, errlen, "%s hook '%.200s': killed by signal %d", name, h->path,
			 WTERMSIG(status));
	return -ECHILD;
}

/* Run every hook of a kind, in order. */
int oci_hooks_run(const struct oci_spec *spec, enum oci_hook_kind kind, const char *state_json,
		  char *err, size_t errlen)
{
	for (int i = 0; i < spec->nhooks[kind]; i++) {
		int r = hook_run(&spec->hooks[kind][i], oci_hook_name(kind), state_json, err,
				 errlen);
		if (r)
			return r;
	}
	return 0;
}
