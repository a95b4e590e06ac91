/* The state directory: ROOT/ID/ holds state.json (our record), vm.json (the
 * VM configuration), start (the FIFO `start` writes to) and, for Linux
 * images, image.lz4. All of it is untrusted when read back: names are
 * opened relative to directory fds with O_NOFOLLOW and every field is
 * checked. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oci/oci.h"

/* Open (creating it) the --root directory. */
int oci_root_open(const char *root, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	if (!root || root[0] != '/') {
		snprintf(err, errlen, "--root '%.200s': must be an absolute path",
			 root ? root : "");
		return -EINVAL;
	}
	/* Parents as needed (e.g. /run/containerd/runc/default). */
	char tmp[4096];
	if (strlen(root) >= sizeof(tmp)) {
		snprintf(err, errlen, "--root: path too long");
		return -ENAMETOOLONG;
	}
	strcpy(tmp, root);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(tmp, 0711);
			*p = '/';
		}
	if (mkdir(root, 0700) && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "--root '%.200s': %s", root, strerror(e));
		return -e;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "--root '%.200s': %s", root,
			 e == ELOOP ? "is a symbolic link" : strerror(e));
		return -e;
	}
	if (fstat(fd, &sb) || sb.st_uid != geteuid() || (sb.st_mode & 022)) {
		snprintf(err, errlen,
			 "--root '%.200s': permission denied (not ours, or writable by group or "
			 "others)",
			 root);
		close(fd);
		return -EACCES;
	}
	return fd;
}

/* Open and lock the container's directory. */
int oci_dir_open(int rootfd, const char *id, char *err, size_t errlen)
{
	int r = oci_id_check(id, err, errlen), fd;
	if (r)
		return r;
	fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(err, errlen, "container \"%s\" does not exist", id);
		else
			snprintf(err, errlen, "container \"%s\": state directory: %s", id,
				 strerror(e));
		return -e;
	}
	if (flock(fd, LOCK_EX)) {
		r = -errno;
		close(fd);
		snprintf(err, errlen, "container \"%s\": locking its state: %s", id, strerror(-r));
		return r;
	}
	return fd;
}

/* Write path in dirfd atomically: a temporary beside it, then rename. */
int oci_write_atomic(int dirfd, const char *path, const char *data, size_t len, char *err,
		     size_t errlen)
{
	char tmp[4200];
	int fd, r = 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "'%.200s': path too long", path);
		return -ENAMETOOLONG;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "'%.200s': %s", path, strerror(-r));
		return r;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (!r && fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r && renameat(dirfd, tmp, dirfd, path))
		r = -errno;
	if (r) {
		unlinkat(dirfd, tmp, 0);
		snprintf(err, errlen, "writing '%.200s': %s", path, strerror(-r));
	}
	return r;
}

/* A bounded string member of the record. */
static int get_str(json_t *o, const char *key, char *out, size_t len)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v) || json_string_length(v) >= len)
		return -EINVAL;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return strlen(out) == json_string_length(v) ? 0 : -EINVAL;
}

/* Read state.json. */
int oci_state_read(int dirfd, struct oci_state *st, char *err, size_t errlen)
{
	char buf[65536];
	json_error_t je;
	json_t *o, *v;
	ssize_t n;
	int fd;

	memset(st, 0, sizeof(*st));
	fd = openat(dirfd, "state.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "state.json: %s", strerror(e));
		return -e;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || n == sizeof(buf) - 1) {
		snprintf(err, errlen, "state.json: unreadable, empty or too large");
		return -EINVAL;
	}
	o = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(err, errlen, "state.json: corrupt");
		return -EINVAL;
	}
	int bad = get_str(o, "id", st->id, sizeof(st->id)) ||
		  get_str(o, "kind", st->kind, sizeof(st->kind)) ||
		  get_str(o, "tap", st->tap, sizeof(st->tap));
	v = json_object_get(o, "pid");
	bad |= !json_is_integer(v) || json_integer_value(v) < 1 ||
	       json_integer_value(v) > (1 << 22);
	if (!bad)
		st->pid = (pid_t)json_integer_value(v);
	v = json_object_get(o, "starttime");
	bad |= !json_is_integer(v) || json_integer_value(v) < 0;
	if (!bad)
		st->starttime = (uint64_t)json_integer_value(v);
	v = json_object_get(o, "created_ns");
	bad |= !json_is_integer(v);
	if (!bad)
		st->created_ns = json_integer_value(v);
	bad |= !json_is_boolean(json_object_get(o, "started")) ||
	       !json_is_boolean(json_object_get(o, "paused"));
	st->started = json_is_true(json_object_get(o, "started"));
	st->paused = json_is_true(json_object_get(o, "paused"));
	v = json_object_get(o, "bundle");
	bad |= !json_is_string(v);
	if (!bad)
		st->bundle = strdup(json_string_value(v));
	v = json_object_get(o, "netns");
	if (json_is_string(v) && json_string_value(v)[0] == '/')
		st->netns = strdup(json_string_value(v));
	v = json_object_get(o, "annotations");
	st->annotations_json = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : strdup("{}");
	json_decref(o);
	if (bad || !st->bundle || !st->annotations_json) {
		oci_state_free(st);
		snprintf(err, errlen, "state.json: corrupt");
		return -EINVAL;
	}
	return 0;
}

/* Write state.json. */
int oci_state_write(int dirfd, const struct oci_state *st, char *err, size_t errlen)
{
	json_error_t je;
	json_t *ann = json_loads(st->annotations_json ? st->annotations_json : "{}", 0, &je);
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:b, s:s, s:s, s:s, s:o}", "id",
			      st->id, "bundle", st->bundle, "pid", (json_int_t)st->pid, "starttime",
			      (json_int_t)st->starttime, "created_ns", (json_int_t)st->created_ns,
			      "started", st->started, "paused", st->paused, "kind", st->kind, "tap",
			      st->tap, "netns", st->netns ? st->netns : "", "annotations",
			      ann ? ann : json_object());
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return -ENOMEM;
	int r = oci_write_atomic(dirfd, "state.json", s, strlen(s), err, errlen);
	free(s);
	return r;
}

/* Free what oci_state_read allocated. */
void oci_state_free(struct oci_state *st)
{
	free(st->bundle);
	free(st->annotations_json);
	free(st->netns);
	st->bundle = st->annotations_json = st->netns = NULL;
}

/* Field 22 (start time) and field 3 (state) of /proc/PID/stat. */
static uint64_t proc_stat(pid_t pid, char *state)
{
	char path[64], buf[1024];
	int fd;
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
	if (!p || p[1] != ' ')
		return 0;
	p += 2;
	if (state)
		*state = *p;
	/* p is at field 3; skip to field 22. */
	for (int f = 3; f < 22; f++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	return strtoull(p, NULL, 10);
}

/* Start time of pid. */
uint64_t oci_proc_starttime(pid_t pid)
{
	return proc_stat(pid, NULL);
}

/* The state letter of pid (R, S, T, Z...), 0 if gone. */
char oci_proc_state(pid_t pid)
{
	char s = 0;
	return proc_stat(pid, &s) ? s : 0;
}

/* Is the VMM process alive? */
bool oci_state_alive(const struct oci_state *st)
{
	char s = 0;
	uint64_t t = proc_stat(st->pid, &s);
	return t != 0 && t == st->starttime && s != 'Z' && s != 'X';
}

/* The container's status. */
const char *oci_state_status(const struct oci_state *st)
{
	if (!oci_state_alive(st))
		return "stopped";
	if (!st->started)
		return "created";
	return st->paused ? "paused" : "running";
}

/* The OCI state JSON (runtime-spec runtime.md, plus runc's extra fields). */
char *oci_state_json(const struct oci_state *st, bool pretty)
{
	char created[64];
	struct tm tm;
	time_t secs = (time_t)(st->created_ns / 1000000000);
	gmtime_r(&secs, &tm);
	size_t n = strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(created + n, sizeof(created) - n, ".%09dZ", (int)(st->created_ns % 1000000000));
	json_error_t je;
	json_t *ann = json_loads(st->annotations_json ? st->annotations_json : "{}", 0, &je);
	const char *status = oci_state_status(st);
	bool alive = strcmp(status, "stopped") != 0;
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:o}", "ociVersion", OCI_VERSION,
			      "id", st->id, "status", status, "pid",
			      (json_int_t)(alive ? st->pid : 0), "bundle", st->bundle, "rootfs", "",
			      "created", created, "annotations", ann ? ann : json_object());
	char *s = o ? json_dumps(o, pretty ? JSON_INDENT(2) : JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

/* Remove the container's directory and its plain files. */
int oci_dir_remove(int rootfd, const char *id, char *err, size_t errlen)
{
	static const char *const names[] = {"state.json", "vm.json", "start",
					    "image.lz4",  "pid",     NULL};
	int fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		for (const char *const *n = names; *n; n++)
			unlinkat(fd, *n, 0); /* a name that is a directory stays, and so does ID */
		for (int i = 0; i < OCI_MAX_MOUNTS; i++) { /* the bind mounts' disks */
			char name[32];
			oci_disk_name(i, name, sizeof(name));
			unlinkat(fd, name, 0);
		}
		close(fd);
	}
	if (unlinkat(rootfd, id, AT_REMOVEDIR) && errno != ENOENT) {
		int e = errno;
		snprintf(err, errlen, "removing the state of \"%s\": %s", id, strerror(e));
		return -e;
	}
	return 0;
}
