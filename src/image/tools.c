/* Running Debian's own tools (apt-get, apt-cache, dpkg-deb, lz4, mke2fs,
 * debugfs) with posix_spawn: no shell, so no quoting of package names or
 * paths. Their stderr is kept in a memfd, and its last line becomes the
 * reason when one fails. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image/image_int.h"

extern char **environ;

/* All of fd's bytes (from offset 0), NUL-terminated, malloc'd. */
static char *read_all(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	if (len < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	char *s = malloc((size_t)len + 1);
	size_t got = 0;
	while (s && got < (size_t)len) {
		ssize_t n = read(fd, s + got, (size_t)len - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (s)
		s[got] = '\0';
	return s;
}

/* The last non-empty line of text, into err. */
static void last_line(const char *text, char *err, size_t errlen)
{
	const char *end = text + strlen(text);
	while (end > text && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > text && start[-1] != '\n')
		start--;
	snprintf(err, errlen, "%.*s", (int)(end - start), start);
}

static int spawn_wait(char *const argv[], const char *cwd, int in_fd, int out_fd, int err_fd,
		      char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(r));
		return -ENOENT;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(err, errlen, "%s: %s", argv[0], strerror(errno));
			return -errno;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	char *text = read_all(err_fd);
	char line[400] = "";
	if (text)
		last_line(text, line, sizeof(line));
	free(text);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && !line[0])
		snprintf(err, errlen, "cannot run %s", argv[0]);
	else if (WIFEXITED(st))
		snprintf(err, errlen, "%s failed (exit %d)%s%s", argv[0], WEXITSTATUS(st),
			 line[0] ? ": " : "", line);
	else
		snprintf(err, errlen, "%s killed by signal %d", argv[0], WTERMSIG(st));
	return -EIO;
}

int tool_run_in(const char *cwd, char *const argv[], int in_fd, int out_fd, char *err,
		size_t errlen)
{
	int efd = memfd_create("tool-stderr", MFD_CLOEXEC);
	if (efd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -errno;
	}
	int r = spawn_wait(argv, cwd, in_fd, out_fd, efd, err, errlen);
	close(efd);
	return r;
}

int tool_run(char *const argv[], int in_fd, int out_fd, char *err, size_t errlen)
{
	return tool_run_in(NULL, argv, in_fd, out_fd, err, errlen);
}

int tool_output(char *const argv[], char **out, char *err, size_t errlen)
{
	*out = NULL;
	int ofd = memfd_create("tool-stdout", MFD_CLOEXEC);
	if (ofd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -errno;
	}
	int r = tool_run(argv, -1, ofd, err, errlen);
	if (!r && !(*out = read_all(ofd))) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
	}
	close(ofd);
	return r;
}

/* mkdir -p */
static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(path, 0755);
		*p = '/';
		if (r && errno != EEXIST)
			return -errno;
	}
	return mkdir(path, 0755) && errno != EEXIST ? -errno : 0;
}

int tool_cache_dir(char *buf, size_t len)
{
	const char *c = getenv("WISP_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	int n;
	if (c && *c)
		n = snprintf(buf, len, "%s/image", c);
	else if (x && *x)
		n = snprintf(buf, len, "%s/wisp/image", x);
	else if (h && *h)
		n = snprintf(buf, len, "%s/.cache/wisp/image", h);
	else
		n = snprintf(buf, len, "/tmp/wisp-cache-%u/image", (unsigned)getuid());
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return mkdirs(buf);
}
