/* Paths inside a root directory (the staging tree, a user's rootfs) are
 * resolved here, by hand, one component at a time, never by the host
 * kernel: a package's or a rootfs's symlink may point at "/etc/passwd" or
 * "../../..", which must mean the image's /etc/passwd and the image's root,
 * not the host's. Only paths with no symlink left in them are handed to
 * lstat/open, and each symlink met is recorded so the image keeps it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

int path_clean(const char *in, char *out, size_t len)
{
	size_t o = 0;
	const char *p = in;
	if (!len)
		return -ENAMETOOLONG;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0)
			break;
		if (n == 2 && !memcmp(p, "..", 2))
			return -EINVAL;
		if (!(n == 1 && *p == '.')) {
			if (o + n + 2 > len)
				return -ENAMETOOLONG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = end;
	}
	out[o] = '\0';
	return 0;
}

void path_resolved_free(struct image_resolved *r)
{
	free(r->hops);
	r->hops = NULL;
	r->nr_hops = 0;
}

/* Drop the last component of cur (the root stays the root). */
static void pop_component(char *cur)
{
	char *s = strrchr(cur, '/');
	if (s)
		*s = '\0';
	else
		cur[0] = '\0';
}

int path_resolve(const char *root, const char *path, struct image_resolved *r)
{
	char cur[PATH_MAX] = "", host[PATH_MAX * 2];
	/* What is left to walk; symlink targets are put in front of it. */
	char *rest = malloc(PATH_MAX * 2), *tmp = malloc(PATH_MAX * 2);
	int err = 0, links = 0;
	memset(r, 0, sizeof(*r));
	if (!rest || !tmp) {
		err = -ENOMEM;
		goto out;
	}
	if (snprintf(rest, PATH_MAX * 2, "%s", path) >= PATH_MAX * 2) {
		err = -ENAMETOOLONG;
		goto out;
	}
	char *p = rest;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *end = strchrnul(p, '/');
		char comp[NAME_MAX + 1];
		size_t n = (size_t)(end - p);
		if (n > NAME_MAX) {
			err = -ENAMETOOLONG;
			goto out;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p = end;
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			pop_component(cur);
			continue;
		}
		char cand[PATH_MAX];
		if (snprintf(cand, sizeof(cand), "%s%s%s", cur, *cur ? "/" : "", comp) >=
			    (int)sizeof(cand) ||
		    snprintf(host, sizeof(host), "%s/%s", root, cand) >= (int)sizeof(host)) {
			err = -ENAMETOOLONG;
			goto out;
		}
		struct stat st;
		if (lstat(host, &st)) {
			err = -errno;
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			if (++links > IMAGE_MAX_SYMLINK) {
				err = -ELOOP;
				goto out;
			}
			char target[PATH_MAX];
			ssize_t tl = readlink(host, target, sizeof(target) - 1);
			if (tl <= 0) {
				err = tl < 0 ? -errno : -ENOENT;
				goto out;
			}
			target[tl] = '\0';
			struct image_hop *h =
				realloc(r->hops, (size_t)(r->nr_hops + 1) * sizeof(*h));
			if (!h) {
				err = -ENOMEM;
				goto out;
			}
			r->hops = h;
			snprintf(h[r->nr_hops].path, sizeof(h->path), "%s", cand);
			snprintf(h[r->nr_hops].target, sizeof(h->target), "%s", target);
			r->nr_hops++;
			if (snprintf(tmp, PATH_MAX * 2, "%s/%s", target, p) >= PATH_MAX * 2) {
				err = -ENAMETOOLONG;
				goto out;
			}
			memcpy(rest, tmp, strlen(tmp) + 1);
			p = rest;
			if (target[0] == '/')
				cur[0] = '\0';
			continue;
		}
		if (!S_ISDIR(st.st_mode) && *p && strspn(p, "/") != strlen(p)) {
			err = -ENOTDIR;
			goto out;
		}
		memcpy(cur, cand, strlen(cand) + 1);
	}
	snprintf(r->path, sizeof(r->path), "%s", cur);
out:
	free(rest);
	free(tmp);
	if (err)
		path_resolved_free(r);
	return err;
}
