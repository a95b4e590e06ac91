/* `wisp image build`: one application and what it needs, and nothing else.
 *
 *   sources  a Debian package (deb.c), a local binary with the host's
 *            libraries, or a root file system directory;
 *   closure  the entry command and every ELF the package ships, with their
 *            loaders and libraries (closure.c), the package's files minus
 *            docs, man pages and locales;
 *   base     busybox (static) for a shell, our init as /init, its orders in
 *            /etc/wisp-image/config, the manifest in /etc/wisp-image/manifest;
 *   pack     newc cpio + LZ4, or ext4 with mke2fs -d.
 *
 * The output is written to a temporary file next to it and renamed only
 * when complete, so a failure (full disk included) leaves no half image. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

#define MAX_ARGS 128

/* Paths no application needs at run time (Tinyx's clean-up). */
static const char *const dropped[] = {
	"usr/share/doc",      "usr/share/man",	"usr/share/info",  "usr/share/locale",
	"usr/share/lintian",  "usr/share/bug",	"usr/share/linda", "usr/share/bash-completion",
	"usr/share/zsh",      "usr/share/menu", "usr/share/i18n",  "usr/lib/systemd",
	"lib/systemd",	      "etc/init.d",	"etc/logrotate.d", "etc/systemd",
	"usr/share/apport",   "usr/share/gdb",	"usr/share/vim",   "usr/lib/tmpfiles.d",
	"usr/lib/sysusers.d",
};

/* The busybox applets linked into the image (a shell and basic tools). */
static const char *const applets[] = {
	"sh",	   "ash",      "cat",	 "ls",	     "ps",     "echo",	"mkdir",    "rm",
	"cp",	   "mv",       "ln",	 "mount",    "umount", "kill",	"sleep",    "grep",
	"sed",	   "vi",       "ip",	 "ping",     "wget",   "nc",	"top",	    "free",
	"df",	   "du",       "dmesg",	 "env",	     "id",     "uname", "hostname", "head",
	"tail",	   "wc",       "date",	 "sync",     "true",   "false", "test",	    "chmod",
	"chown",   "touch",    "find",	 "xargs",    "which",  "less",	"ifconfig", "route",
	"netstat", "nslookup", "reboot", "poweroff", "printf", "tr",
};

/* Debian's fixed system users (base-passwd), for software that names them
 * (nginx's "user www-data") in an image that has no /etc/passwd. */
static const struct {
	const char *name;
	unsigned uid;
} system_users[] = {{"root", 0}, {"daemon", 1},	   {"bin", 2},
		    {"sys", 3},	 {"www-data", 33}, {"nobody", 65534}};

struct build {
	const struct image_spec *spec;
	struct image_tree tree;
	char staging[PATH_MAX];
	const char *root; /* where files and libraries come from */
	char bindir[PATH_MAX];
	char *argv[MAX_ARGS];
	int argc;
	unsigned uid, gid;
	char user[64];
	bool add_user;
	char *err;
	size_t errlen;
};

static int fail(struct build *b, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct build *b, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->err, b->errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* Split cmd like a shell word list: blanks separate, '...' and "..." quote,
 * backslash escapes. No expansion of any kind. */
static int split_cmd(struct build *b, const char *cmd)
{
	char word[4096];
	size_t w = 0;
	bool in_word = false;
	char q = 0;
	for (const char *p = cmd;; p++) {
		char c = *p;
		if (!c && q)
			return fail(b, -EINVAL, "--cmd: unterminated quote");
		bool end = !c || (!q && (c == ' ' || c == '\t'));
		if (end) {
			if (in_word) {
				if (b->argc == MAX_ARGS - 1)
					return fail(b, -E2BIG, "--cmd: more than %d words",
						    MAX_ARGS - 1);
				word[w] = '\0';
				if (!(b->argv[b->argc++] = strdup(word)))
					return -ENOMEM;
			}
			w = 0;
			in_word = false;
			if (!c)
				break;
			continue;
		}
		in_word = true;
		if (c == '\n')
			return fail(b, -EINVAL, "--cmd: newlines are not allowed");
		if (!q && (c == '\'' || c == '"')) {
			q = c;
			continue;
		}
		if (q && c == q) {
			q = 0;
			continue;
		}
		if (c == '\\' && q != '\'' && p[1])
			c = *++p;
		if (w + 1 >= sizeof(word))
			return fail(b, -E2BIG, "--cmd: word too long");
		word[w++] = c;
	}
	if (!b->argc)
		return fail(b, -EINVAL, "--cmd: empty command");
	return 0;
}

static bool is_dropped(const char *rel)
{
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
		size_t n = strlen(dropped[i]);
		if (!strncmp(rel, dropped[i], n) && (rel[n] == '/' || !rel[n]))
			return true;
	}
	return false;
}

/* Walk host directory dir (relative paths rel) and add what is not dropped:
 * directories, symlinks as they are, regular files with their closure. */
/* Does host file p start with the ELF magic? */
static bool file_is_elf(const char *p)
{
	uint8_t m[4];
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	bool elf = fd >= 0 && read(fd, m, 4) == 4 && image_is_elf(m, 4);
	if (fd >= 0)
		close(fd);
	return elf;
}

/* main: the package asked for (every ELF it ships comes with its closure);
 * otherwise a sibling from the same source, whose ELFs come only when
 * something needs them (redis-server's link to redis-tools' binary). */
static int add_walk(struct build *b, const char *dir, const char *rel, const char *reason,
		    const char *conffiles, bool main)
{
	char host[PATH_MAX * 2];
	snprintf(host, sizeof(host), "%s/%s", dir, rel);
	/* Sorted, so that the first reason for a shared library does not
	 * depend on the directory's order. */
	struct dirent **names;
	int n = scandir(host, &names, NULL, alphasort);
	if (n < 0)
		return fail(b, -errno, "%s: %s", host, strerror(errno));
	int r = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char sub[PATH_MAX];
		if (r || !strcmp(name, ".") || !strcmp(name, ".."))
			goto next;
		if (snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", name) >=
		    (int)sizeof(sub)) {
			r = fail(b, -ENAMETOOLONG, "%s/%s: path too long", dir, rel);
			goto next;
		}
		if (is_dropped(sub))
			goto next;
		snprintf(host, sizeof(host), "%s/%s", dir, sub);
		struct stat st;
		if (lstat(host, &st)) {
			r = fail(b, -errno, "%s: %s", host, strerror(errno));
			goto next;
		}
		char why[PATH_MAX + 600], key[PATH_MAX + 3];
		snprintf(key, sizeof(key), "\n/%s\n", sub);
		snprintf(why, sizeof(why), "%s%s", reason,
			 conffiles && strstr(conffiles, key) ? " (conffile)" : "");
		if (S_ISDIR(st.st_mode)) {
			r = tree_add_dir(&b->tree, sub, st.st_mode, why);
			if (r == -EEXIST)
				r = 0; /* a symlink there already (a usrmerge link) */
			if (!r)
				r = add_walk(b, dir, sub, reason, conffiles, main);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t tl = readlink(host, target, sizeof(target) - 1);
			if (tl <= 0) {
				r = fail(b, -EIO, "%s: unreadable symlink", host);
				goto next;
			}
			target[tl] = '\0';
			r = tree_add_symlink(&b->tree, sub, target, why);
			if (r == -EEXIST)
				r = 0;
			/* What a link of the package points at comes too, with its
			 * closure, unless it points nowhere (made by a maintainer
			 * script, say). */
			char p[PATH_MAX + 2];
			struct image_resolved res;
			snprintf(p, sizeof(p), "/%s", sub);
			if (!r && main && !path_resolve(b->root, p, &res)) {
				path_resolved_free(&res);
				snprintf(why, sizeof(why), "target of /%s (%s)", sub, reason);
				r = closure_add(&b->tree, b->root, p, why, false, b->err,
						b->errlen);
			}
		} else if (S_ISREG(st.st_mode) && (main || !file_is_elf(host))) {
			char p[PATH_MAX + 2];
			snprintf(p, sizeof(p), "/%s", sub);
			r = closure_add(&b->tree, b->root, p, why, false, b->err, b->errlen);
		}
		if (r && !b->err[0])
			snprintf(b->err, b->errlen, "/%s: %s", sub, strerror(-r));
	next:
		free(names[i]);
	}
	free(names);
	return r;
}

/* A directory of the image, created where the source root has it (its
 * "bin" may be a symlink to usr/bin: keep the link, use the target). */
static int gen_dir(struct build *b, const char *path, mode_t mode, char *real, size_t len)
{
	struct image_resolved r;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "/%s", path);
	if (path_resolve(b->root, p, &r) == 0) {
		for (int i = 0; i < r.nr_hops; i++)
			tree_add_symlink(&b->tree, r.hops[i].path, r.hops[i].target,
					 "symlink in the source root");
		path_resolved_free(&r);
		struct stat st;
		char host[PATH_MAX * 2];
		snprintf(host, sizeof(host), "%s/%s", b->root, r.path);
		if (!stat(host, &st) && S_ISDIR(st.st_mode)) {
			snprintf(real, len, "%s", r.path);
			return tree_add_dir(&b->tree, r.path, st.st_mode, "directory");
		}
	}
	snprintf(real, len, "%s", path);
	int x = tree_add_dir(&b->tree, path, mode, "directory");
	return x == -EEXIST ? fail(b, x, "/%s: not a directory in the image", path) : x;
}

/* Where a helper binary is: $ENV, else next to the running wisp (or one
 * level up: build/asan/wisp finds build/tinit). */
static int find_helper(const char *env, const char *name, char *out, size_t len)
{
	const char *e = getenv(env);
	if (e && *e) {
		snprintf(out, len, "%s", e);
		return access(out, R_OK) ? -errno : 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -ENOENT;
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	const char *const where[] = {"%s/%s", "%s/../%s", "%s/image/%s"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(out, len, where[i], self, name);
		if (!access(out, R_OK))
			return 0;
	}
	return -ENOENT;
}

/* The user the command runs as: UID[:GID], or a name from the image's
 * /etc/passwd, Debian's fixed system users, or a new one (uid 1000). */
static int resolve_user(struct build *b)
{
	const char *u = b->spec->user;
	b->uid = b->gid = 0;
	snprintf(b->user, sizeof(b->user), "root");
	if (!u || !*u)
		return 0;
	char *end;
	unsigned long v = strtoul(u, &end, 10);
	if (end != u && (!*end || *end == ':') && v < 65536 * 65536ul) {
		b->uid = b->gid = (unsigned)v;
		if (*end == ':') {
			const char *g = end + 1;
			v = strtoul(g, &end, 10);
			if (end == g || *end || v >= 65536 * 65536ul)
				return fail(b, -EINVAL, "--user '%s': want NAME, UID or UID:GID",
					    u);
			b->gid = (unsigned)v;
		}
		snprintf(b->user, sizeof(b->user), "u%u", b->uid);
		b->add_user = b->uid != 0;
		return 0;
	}
	if (strlen(u) > 31 || strspn(u, "abcdefghijklmnopqrstuvwxyz0123456789_-.") != strlen(u))
		return fail(b, -EINVAL, "--user '%s': not a user name", u);
	snprintf(b->user, sizeof(b->user), "%s", u);
	/* A rootfs's own /etc/passwd. */
	char host[PATH_MAX * 2];
	struct image_resolved r;
	if (b->spec->rootfs && !path_resolve(b->root, "/etc/passwd", &r)) {
		path_resolved_free(&r);
		snprintf(host, sizeof(host), "%s/%s", b->root, r.path);
		FILE *f = fopen(host, "re");
		char line[512];
		while (f && fgets(line, sizeof(line), f)) {
			unsigned uid, gid;
			size_t nl = strlen(u);
			if (!strncmp(line, u, nl) && line[nl] == ':' &&
			    sscanf(strchr(line + nl + 1, ':') ? strchr(line + nl + 1, ':') + 1 : "",
				   "%u:%u", &uid, &gid) == 2) {
				b->uid = uid;
				b->gid = gid;
				fclose(f);
				return 0;
			}
		}
		if (f)
			fclose(f);
		return fail(b, -ENOENT, "--user '%s': no such user in the rootfs's /etc/passwd", u);
	}
	for (size_t i = 0; i < sizeof(system_users) / sizeof(system_users[0]); i++)
		if (!strcmp(system_users[i].name, u)) {
			b->uid = b->gid = system_users[i].uid;
			return 0;
		}
	b->uid = b->gid = 1000;
	b->add_user = true;
	return 0;
}

/* /etc/passwd and /etc/group, unless the sources have them. */
static int add_users(struct build *b)
{
	char passwd[2048] = "", group[2048] = "";
	size_t pl = 0, gl = 0;
	if (tree_find(&b->tree, "etc/passwd"))
		return 0;
	for (size_t i = 0; i < sizeof(system_users) / sizeof(system_users[0]); i++) {
		unsigned id = system_users[i].uid;
		const char *n = system_users[i].name;
		pl += (size_t)snprintf(passwd + pl, sizeof(passwd) - pl, "%s:x:%u:%u:%s:%s:%s\n", n,
				       id, id, n, id ? "/nonexistent" : "/root",
				       id ? "/usr/sbin/nologin" : "/bin/sh");
		gl += (size_t)snprintf(group + gl, sizeof(group) - gl, "%s:x:%u:\n",
				       id == 65534 ? "nogroup" : n, id);
	}
	if (b->add_user) {
		pl += (size_t)snprintf(passwd + pl, sizeof(passwd) - pl,
				       "%s:x:%u:%u:%s:/nonexistent:/usr/sbin/nologin\n", b->user,
				       b->uid, b->gid, b->user);
		gl += (size_t)snprintf(group + gl, sizeof(group) - gl, "%s:x:%u:\n", b->user,
				       b->gid);
	}
	int r = tree_add_data(&b->tree, "etc/passwd", passwd, pl, 0644, "generated: users");
	if (!r)
		r = tree_add_data(&b->tree, "etc/group", group, gl, 0644, "generated: groups");
	return r;
}

/* PID 1's orders: argv, environment, workdir, user (guest/linux/tinit). */
static int add_config(struct build *b)
{
	struct wbuf w = {0};
	char line[8192];
	int n = snprintf(line, sizeof(line), "wisp-image 1\nuid=%u\ngid=%u\nworkdir=%s\n", b->uid,
			 b->gid, b->spec->workdir ? b->spec->workdir : "/");
	wbuf_put(&w, line, (size_t)n);
	for (int i = 0; i < b->argc; i++) {
		n = snprintf(line, sizeof(line), "arg=%s\n", b->argv[i]);
		wbuf_put(&w, line, (size_t)n);
	}
	for (int i = 0; i < b->spec->nr_env; i++) {
		const char *e = b->spec->env[i];
		if (!strchr(e, '=') || e[0] == '=' || strchr(e, '\n')) {
			wbuf_free(&w);
			return fail(b, -EINVAL, "--env '%s': want K=V", e);
		}
		n = snprintf(line, sizeof(line), "env=%s\n", e);
		wbuf_put(&w, line, (size_t)n);
	}
	int r = wbuf_error(&w);
	if (!r)
		r = tree_add_data(&b->tree, IMAGE_CONFIG_PATH, w.p, w.len, 0644,
				  "wisp init: command, environment, workdir, user");
	wbuf_free(&w);
	return r;
}

/* Busybox, the init, the mount points, the device nodes. */
static int add_base(struct build *b)
{
	char bb[PATH_MAX], tinit[PATH_MAX], path[PATH_MAX * 2], real[PATH_MAX];
	int r;
	if (find_helper("WISP_TINIT", "tinit", tinit, sizeof(tinit)))
		return fail(b, -ENOENT,
			    "the guest init 'tinit' is not built (make build/tinit, or "
			    "set WISP_TINIT)");
	if ((r = tree_add_file(&b->tree, "init", tinit, 0755, "wisp init (PID 1)")))
		return fail(b, r, "/init: %s", strerror(-r));
	const char *bbsrc = getenv("WISP_BUSYBOX");
	snprintf(bb, sizeof(bb), "%s", bbsrc && *bbsrc ? bbsrc : "/bin/busybox");
	if ((r = closure_deps(&b->tree, "/", bb, "bin/busybox", true, b->err, b->errlen)))
		return fail(b, r, "busybox %s: %s (install busybox-static)", bb, b->err);
	if ((r = gen_dir(b, "bin", 0755, b->bindir, sizeof(b->bindir))))
		return r;
	snprintf(path, sizeof(path), "%s/busybox", b->bindir);
	if (!tree_find(&b->tree, path) &&
	    (r = tree_add_file(&b->tree, path, bb, 0755, "busybox: a shell and basic tools")))
		return fail(b, r, "/%s: %s", path, strerror(-r));
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		char ap[PATH_MAX * 2 + 8], probe[PATH_MAX];
		snprintf(ap, sizeof(ap), "%s/%s", b->bindir, applets[i]);
		if (tree_find(&b->tree, ap) ||
		    !closure_find_command(b->root, applets[i], probe, sizeof(probe)))
			continue;
		if ((r = tree_add_symlink(&b->tree, ap, "busybox", "busybox applet")))
			return fail(b, r, "/%s: %s", ap, strerror(-r));
	}
	static const struct {
		const char *path;
		mode_t mode;
	} dirs[] = {{"proc", 0555}, {"sys", 0555}, {"dev", 0755},      {"tmp", 01777},
		    {"run", 0755},  {"etc", 0755}, {"var/tmp", 01777}, {"root", 0700}};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if ((r = gen_dir(b, dirs[i].path, dirs[i].mode, real, sizeof(real))))
			return r;
	/* Without /dev/console in the archive init has no stdout (devtmpfs
	 * is not mounted yet); ext4 roots get devtmpfs mounted by the kernel. */
	if (b->spec->format == IMAGE_INITRAMFS &&
	    ((r = tree_add_chr(&b->tree, "dev/console", 5, 1, 0600, "console for PID 1")) ||
	     (r = tree_add_chr(&b->tree, "dev/null", 1, 3, 0666, "/dev/null"))))
		return fail(b, r, "/dev: %s", strerror(-r));
	return 0;
}

/* Commands an entry script names ("sh -c '... exec nginx ...'"): each word
 * of the arguments that is a command of the sources comes with its
 * closure, as the entry itself does. */
static int add_script_commands(struct build *b)
{
	if (b->spec->binary)
		return 0; /* the host's commands are not the image's */
	for (int i = 1; i < b->argc; i++) {
		char *copy = strdup(b->argv[i]), *save = NULL;
		if (!copy)
			return -ENOMEM;
		int r = 0;
		for (char *w = strtok_r(copy, " \t;&|()'\"`<>=", &save); w && !r;
		     w = strtok_r(NULL, " \t;&|()'\"`<>=", &save)) {
			char found[PATH_MAX], why[PATH_MAX + 64];
			if (w[0] == '-' || (strchr(w, '/') && w[0] != '/') ||
			    closure_find_command(b->root, w, found, sizeof(found)))
				continue;
			snprintf(why, sizeof(why), "command %s named by the entry command", w);
			r = closure_add(&b->tree, b->root, found, why, false, b->err, b->errlen);
		}
		free(copy);
		if (r)
			return r;
	}
	return 0;
}

/* The entry command: it must be in the image, with its closure. */
static int add_entry(struct build *b)
{
	char found[PATH_MAX], why[PATH_MAX + 64];
	const char *cmd = b->argv[0];
	if (b->spec->binary) {
		/* The host is where libraries come from, not commands: the
		 * binary itself or a busybox applet. */
		const char *base = strrchr(b->spec->binary, '/');
		base = base ? base + 1 : b->spec->binary;
		char in_image[PATH_MAX];
		snprintf(in_image, sizeof(in_image), "/usr/bin/%s", base);
		if (!strcmp(cmd, base) || !strcmp(cmd, in_image))
			return 0;
		for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
			if (!strcmp(cmd, applets[i]))
				return 0;
		if (!strcmp(cmd, "busybox"))
			return 0;
		return fail(b, -ENOENT, "command '%s' not found in the image", cmd);
	}
	if (closure_find_command(b->root, cmd, found, sizeof(found))) {
		/* A busybox applet linked above? */
		for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++)
			if (!strcmp(cmd, applets[i]))
				return 0;
		return fail(b, -ENOENT, "command '%s' not found in the image", cmd);
	}
	snprintf(why, sizeof(why), "entry command %s", cmd);
	int r = closure_add(&b->tree, b->root, found, why, false, b->err, b->errlen);
	if (r)
		return r;
	/* A script: its interpreter too. */
	struct image_resolved res;
	if (path_resolve(b->root, found, &res))
		return 0;
	path_resolved_free(&res);
	char host[PATH_MAX * 2], line[256] = "";
	snprintf(host, sizeof(host), "%s/%s", b->root, res.path);
	FILE *f = fopen(host, "re");
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
	}
	if (strncmp(line, "#!", 2))
		return 0;
	char *interp = line + 2 + strspn(line + 2, " \t");
	interp[strcspn(interp, " \t\n")] = '\0';
	snprintf(why, sizeof(why), "interpreter of %s", found);
	for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
		char bbpath[PATH_MAX + 8];
		snprintf(bbpath, sizeof(bbpath), "/bin/%s", applets[i]);
		if (!strcmp(interp, bbpath))
			return 0; /* /bin/sh: busybox */
	}
	r = closure_add(&b->tree, b->root, interp, why, true, b->err, b->errlen);
	if (r == -ENOENT)
		return fail(b, r, "interpreter %s of %s not found in the image", interp, found);
	return r;
}

/* The package, its siblings and their closure (deb.c). */
static int add_package(struct build *b, struct deb_set *d)
{
	int r = deb_fetch(b->spec, b->staging, d, b->err, b->errlen);
	if (r)
		return r;
	b->root = d->root;
	image_progress(b->spec, "closure", "files of %d own packages and every ELF they ship",
		       d->nr_own);
	for (int i = 0; i < d->nr_own && !r; i++) {
		char reason[300];
		snprintf(reason, sizeof(reason), "package %s", d->own_names[i]);
		r = add_walk(b, d->own[i], "", reason, d->conffiles,
			     !strcmp(d->own_names[i], b->spec->package));
	}
	return r;
}

/* A local executable: at /usr/bin/NAME, libraries from the host. */
static int add_binary(struct build *b)
{
	const char *bin = b->spec->binary;
	struct stat st;
	if (stat(bin, &st))
		return fail(b, -errno, "binary '%s': %s", bin, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(b, -EINVAL, "binary '%s': not a regular file", bin);
	const char *base = strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin;
	char path[PATH_MAX * 2], err[IMAGE_ERRLEN];
	snprintf(path, sizeof(path), "usr/bin/%s", base);
	b->root = "/";
	/* The ELF checks first: one line naming the file and the problem. */
	struct image_tree probe;
	if (tree_init(&probe))
		return -ENOMEM;
	int r = closure_deps(&probe, "/", bin, path, true, err, sizeof(err));
	tree_free(&probe);
	if (r == -ENOEXEC || r == -EXDEV)
		return fail(b, r, "binary '%s': %s", bin,
			    strchr(err, ':') ? strchr(err, ':') + 2 : err);
	if (r)
		return fail(b, r, "binary '%s': %s", bin, err);
	char real[PATH_MAX];
	if ((r = gen_dir(b, "usr/bin", 0755, real, sizeof(real))))
		return r;
	snprintf(path, sizeof(path), "%s/%s", real, base);
	if ((r = tree_add_file(&b->tree, path, bin, st.st_mode, "the binary (--binary)")))
		return fail(b, r, "/%s: %s", path, strerror(-r));
	return closure_deps(&b->tree, "/", bin, path, true, b->err, b->errlen);
}

/* Remove a staging tree. */
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		chmod(p, 0700), rmdir(p);
	else
		unlink(p);
	return 0;
}

/* The output's temporary file while a build runs, for a signal handler. */
static char building[PATH_MAX];
static volatile sig_atomic_t building_set;

void image_build_interrupted(void)
{
	if (building_set)
		unlink(building);
}

int image_build(const struct image_spec *spec, char *err, size_t errlen)
{
	struct build b = {.spec = spec, .err = err, .errlen = errlen};
	struct deb_set debs = {0};
	err[0] = '\0';
	int sources = !!spec->package + !!spec->binary + !!spec->rootfs;
	if (sources != 1)
		return fail(&b, -EINVAL, "give one of --package, --binary and --rootfs");
	if (!spec->out)
		return fail(&b, -EINVAL, "no output (-o OUT)");
	const char *cmd = spec->cmd;
	if (!cmd)
		cmd = spec->package ? spec->package : spec->binary ? spec->binary : NULL;
	if (!cmd)
		return fail(&b, -EINVAL, "--rootfs needs --cmd");
	if (spec->workdir && spec->workdir[0] != '/')
		return fail(&b, -EINVAL, "--workdir '%s': must be absolute", spec->workdir);
	/* The output first: an unwritable one fails before the long steps. */
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.partial-XXXXXX", spec->out) >= (int)sizeof(tmp))
		return fail(&b, -ENAMETOOLONG, "output '%s': path too long", spec->out);
	int out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0)
		return fail(&b, -errno, "output '%s': cannot write there: %s", spec->out,
			    strerror(errno));
	memcpy(building, tmp, sizeof(building));
	building_set = 1;
	fchmod(out, 0644);
	const char *td = getenv("TMPDIR");
	snprintf(b.staging, sizeof(b.staging), "%s/wisp-image-XXXXXX", td && *td ? td : "/tmp");
	int r = -ENOMEM;
	if (!mkdtemp(b.staging)) {
		r = fail(&b, -errno, "staging directory: %s", strerror(errno));
		b.staging[0] = '\0';
		goto out;
	}
	if ((r = tree_init(&b.tree)))
		goto out;
	if ((r = split_cmd(&b, cmd)) || (r = resolve_user(&b)))
		goto out;
	if (spec->package) {
		r = add_package(&b, &debs);
	} else if (spec->binary) {
		r = add_binary(&b);
		if (!spec->cmd && !r) {
			free(b.argv[0]);
			char p[PATH_MAX];
			const char *base = strrchr(spec->binary, '/');
			snprintf(p, sizeof(p), "/usr/bin/%s", base ? base + 1 : spec->binary);
			b.argv[0] = strdup(p);
		}
	} else {
		b.root = spec->rootfs;
		struct stat st;
		if (stat(spec->rootfs, &st) || !S_ISDIR(st.st_mode)) {
			r = fail(&b, -ENOTDIR, "rootfs '%s': not a directory", spec->rootfs);
			goto out;
		}
		image_progress(b.spec, "closure", "the root file system %s", spec->rootfs);
		r = add_walk(&b, spec->rootfs, "", "rootfs", NULL, true);
	}
	if (r)
		goto out;
	image_progress(b.spec, "closure", "entry command %s, busybox, init", b.argv[0]);
	if ((r = add_base(&b)) || (r = add_entry(&b)) || (r = add_script_commands(&b)) ||
	    (r = add_users(&b)) || (r = add_config(&b)))
		goto out;
	char *manifest;
	if ((r = tree_add_data(&b.tree, IMAGE_MANIFEST_PATH, "", 0, 0644,
			       "this list: what is in the image and why")) ||
	    (r = tree_manifest(&b.tree, &manifest)))
		goto out;
	r = tree_add_data(&b.tree, IMAGE_MANIFEST_PATH, manifest, strlen(manifest), 0644,
			  "this list: what is in the image and why");
	free(manifest);
	if (r)
		goto out;
	image_progress(b.spec, "pack", "%zu entries as %s", b.tree.n,
		       spec->format == IMAGE_EXT4 ? "ext4 (mke2fs -d)" : "initramfs (cpio + lz4)");
	if (spec->format == IMAGE_EXT4)
		r = image_pack_ext4(&b.tree, b.staging, out, err, errlen);
	else
		r = image_pack_initramfs(&b.tree, b.staging, out, err, errlen);
	if (!r && fsync(out))
		r = fail(&b, -errno, "output '%s': %s", spec->out, strerror(errno));
	if (!r && close(out)) {
		out = -1;
		r = fail(&b, -errno, "output '%s': %s", spec->out, strerror(errno));
	}
	out = -1;
	if (!r && rename(tmp, spec->out))
		r = fail(&b, -errno, "output '%s': %s", spec->out, strerror(errno));
	if (!r) {
		struct stat st;
		stat(spec->out, &st);
		image_progress(b.spec, "pack", "%s: %lld bytes", spec->out, (long long)st.st_size);
	}
out:
	if (r == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	if (r && !err[0])
		snprintf(err, errlen, "%s", strerror(-r));
	if (out >= 0)
		close(out);
	if (r)
		unlink(tmp);
	building_set = 0;
	if (b.staging[0] && !getenv("WISP_IMAGE_KEEP"))
		nftw(b.staging, rm_one, 32, FTW_DEPTH | FTW_PHYS);
	deb_set_free(&debs);
	tree_free(&b.tree);
	for (int i = 0; i < b.argc; i++)
		free(b.argv[i]);
	return r;
}
