/* The control socket of a `wisp run --name NAME` VM: the same messages
 * wispd sends its VMMs (control.h), on <runtime-dir>/run/NAME.sock, so
 * that `wisp save NAME FILE` reaches a foreground VM without a daemon.
 * Only `--name` opens it: a plain `wisp run` pays nothing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/control.h"

int run_control_path(const char *name, char *buf, size_t len)
{
	char dir[200];
	ctl_default_runtime_dir(dir, sizeof(dir));
	int n = snprintf(buf, len, "%s/run/%s.sock", dir, name);
	return n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path)
		       ? -ENAMETOOLONG
		       : 0;
}

bool run_control_exists(const char *name)
{
	char path[256];
	struct stat st;
	if (!ctl_valid_name(name) || run_control_path(name, path, sizeof(path)))
		return false;
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

int run_control_save(const char *name, const char *file)
{
	char path[256];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	run_control_path(name, path, sizeof(path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "wisp: cannot reach VM '%s' at %s: %s\n", name, path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return WISP_EXIT_ERROR;
	}
	struct ctl_file m = {.type = CTL_SAVE};
	if (strlen(file) >= sizeof(m.path)) {
		fprintf(stderr, "wisp: save: file name too long\n");
		close(fd);
		return WISP_EXIT_ERROR;
	}
	memcpy(m.path, file, strlen(file) + 1);
	struct ctl_info in;
	int r = ctl_send(fd, &m, sizeof(m), -1);
	ssize_t n = 0;
	if (!r) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		/* A save takes milliseconds; give a busy machine a minute. */
		if (poll(&p, 1, 60000) <= 0)
			r = -ETIMEDOUT;
		else
			n = ctl_recv(fd, &in, sizeof(in), NULL);
	}
	close(fd);
	if (r || n != (ssize_t)sizeof(in)) {
		fprintf(stderr, "wisp: VM '%s' did not answer the save: %s\n", name,
			strerror(r	 ? -r
				 : n < 0 ? (int)-n
					 : EPROTO));
		return WISP_EXIT_ERROR;
	}
	in.reason[sizeof(in.reason) - 1] = 0;
	if (in.type != CTL_INFO) {
		fprintf(stderr, "wisp: cannot save VM '%s': %s\n", name, in.reason);
		return WISP_EXIT_ERROR;
	}
	printf("saved %s to %s (%.1f MiB of memory written, %.2f ms)\n", name, file,
	       (double)in.op_bytes / 1048576.0, (double)in.op_total_ns / 1e6);
	return 0;
}
