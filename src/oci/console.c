/* process.terminal: the engine gives a unix socket (--console-socket) and
 * expects a pty master on it (SCM_RIGHTS); the VMM gets the slave as its
 * stdio and controlling terminal. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "oci/oci.h"

/* Send fd over the connected socket s. */
static int send_fd(int s, int fd, const char *name)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)name, .iov_len = strlen(name)};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf)};
	memset(cbuf, 0, sizeof(cbuf));
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(s, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Make the pty and hand its master over. */
int oci_console_setup(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int m, s, sl, r;
	char name[128];

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen,
			 "--console-socket '%.200s': longer than %zu bytes (a unix socket path)",
			 path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) || unlockpt(m) || ptsname_r(m, name, sizeof(name))) {
		r = -errno;
		if (m >= 0)
			close(m);
		snprintf(err, errlen, "creating a pty: %s", strerror(-r));
		return r;
	}
	sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sl < 0) {
		r = -errno;
		close(m);
		snprintf(err, errlen, "opening the pty '%s': %s", name, strerror(-r));
		return r;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) || (r = send_fd(s, m, name))) {
		r = -errno;
		snprintf(err, errlen, "--console-socket '%.200s': %s", path, strerror(-r));
		if (s >= 0)
			close(s);
		close(m);
		close(sl);
		return r;
	}
	close(s);
	close(m);
	return sl;
}
