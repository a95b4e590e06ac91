/* Trust checks for the local attack surface (security.h): a runtime
 * directory someone else created (/tmp/wisp-UID), a symlink planted as
 * wispd.lock, a FIFO named as an image, a stranger on our sockets. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "security/security.h"

int sec_check_private_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "runtime directory %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "runtime directory %s: not a directory%s: refused", path,
			 S_ISLNK(st.st_mode) ? " (a symlink)" : "");
		return -EPERM;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "runtime directory %s: owned by uid %u, not by us (%u): refused", path,
			 (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 022) {
		snprintf(err, errlen,
			 "runtime directory %s: mode %04o lets others write in it: refused (chmod "
			 "go-w)",
			 path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int sec_open_private_file(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd = openat(dirfd, path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, mode);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int sec_open_client_file(const char *path)
{
	/* O_NONBLOCK: opening a FIFO with no writer would wait for one, and
	 * wispd has one thread. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0     ? -errno
		: S_ISDIR(st.st_mode)  ? -EISDIR
		: !S_ISREG(st.st_mode) ? -EINVAL
				       : 0;
	if (!r && fcntl(fd, F_SETFL, 0) < 0)
		r = -errno;
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

/* Is uid a member of gid (primary or supplementary)? */
static bool in_group(uid_t uid, gid_t pgid, gid_t gid)
{
	if (pgid == gid)
		return true;
	struct passwd *pw = getpwuid(uid);
	if (!pw)
		return false;
	int n = 64;
	gid_t groups[64];
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

int sec_peer_allowed(int fd, gid_t gid, uid_t *peer_uid)
{
	struct ucred c;
	socklen_t len = sizeof(c);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) < 0)
		return -errno;
	if (peer_uid)
		*peer_uid = c.uid;
	if (c.uid == geteuid() || c.uid == 0)
		return 0;
	if (gid != (gid_t)-1 && in_group(c.uid, c.gid, gid))
		return 0;
	return -EACCES;
}

int sec_peer_creds(int fd, struct sec_creds *c)
{
	struct ucred u;
	socklen_t len = sizeof(u);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &u, &len) < 0)
		return -errno;
	c->uid = u.uid;
	c->gid = u.gid;
	return 0;
}

/* The kernel's calls, not glibc's: setgroups() in glibc changes every
 * thread of the process; the system call changes this one. */
static int set_groups(int n, const gid_t *g)
{
	return syscall(SYS_setgroups, (size_t)n, g) < 0 ? -errno : 0;
}

int sec_fs_become(const struct sec_creds *c, struct sec_fs_saved *s)
{
	s->switched = false;
	if (c->uid == geteuid())
		return 0;
	if (geteuid() != 0)
		return -EPERM;
	struct passwd *pw = getpwuid(c->uid);
	gid_t groups[256];
	int n = 256;
	if (!pw || getgrouplist(pw->pw_name, c->gid, groups, &n) < 0)
		groups[0] = c->gid, n = 1; /* an unknown user: its own gid only */
	s->ngroups = getgroups(256, s->groups);
	if (s->ngroups < 0)
		return -errno;
	s->fsgid = (gid_t)setfsgid((gid_t)-1);
	s->fsuid = (uid_t)setfsuid((uid_t)-1);
	int r = set_groups(n, groups);
	if (r)
		return r;
	setfsgid(c->gid);
	setfsuid(c->uid);
	if ((uid_t)setfsuid((uid_t)-1) != c->uid || (gid_t)setfsgid((gid_t)-1) != c->gid) {
		s->switched = true;
		sec_fs_restore(s);
		return -EPERM;
	}
	s->switched = true;
	return 0;
}

void sec_fs_restore(struct sec_fs_saved *s)
{
	if (!s->switched)
		return;
	setfsuid(s->fsuid);
	setfsgid(s->fsgid);
	set_groups(s->ngroups, s->groups);
	s->switched = false;
}
