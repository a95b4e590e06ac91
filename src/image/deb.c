/* A Debian package and what it links against, with Debian's own tools and
 * no root: apt-cache lists the dependencies (from the local APT lists),
 * apt-get download fetches the .debs into the cache (keyed by their file
 * names, which carry name, version and architecture; apt-get checks each
 * against the archive's hash), dpkg-deb -x unpacks them. Nothing is
 * installed and no maintainer script runs.
 *
 * Which packages: the one asked for and its siblings from the same source
 * package (redis-server's binary is in redis-tools, nginx-light's
 * configuration in nginx-common) are "own": all their files go into the
 * image. Every library package (Section libs, or named lib*) they depend
 * on, recursively, is unpacked too, but only as a pool the ELF closure
 * picks libraries from. */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/image_int.h"

#define MAX_PKGS 512

void image_progress(const struct image_spec *s, const char *step, const char *fmt, ...)
{
	if (!s->progress)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->progress(s->progress_ctx, step, buf);
}

/* A package name as Debian allows it ([a-z0-9][a-z0-9+.-]+), so that it
 * can never be taken for an option or a path by the tools. */
static bool valid_name(const char *n)
{
	if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9')) || strlen(n) < 2 ||
	    strlen(n) > 128)
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyz0123456789+.-") == strlen(n);
}

struct pkg {
	char *name, *source, *file; /* file: the .deb's name in the cache */
	bool own, lib;		    /* lib: Section libs (zlib1g is one) */
};

static void pkgs_free(struct pkg *p, int n)
{
	for (int i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].source);
		free(p[i].file);
	}
	free(p);
}

static struct pkg *pkg_find(struct pkg *p, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(p[i].name, name))
			return &p[i];
	return NULL;
}

/* One package's stanza in `apt-cache depends --recurse` output: its name
 * line, then "  Depends: X" lines (" |Depends:" when the next line is an
 * alternative), each maybe followed by "    Y" lines naming providers. */
struct stanza {
	char *name;
	char *deps[64]; /* the first alternative of each dependency */
	int nr;
};

/* The package and what it depends on, recursively (apt-cache depends):
 * only the first alternative of each dependency, and for a virtual one its
 * first provider, as apt itself would choose on a bare system (without
 * this, libelogind0 would shadow libsystemd0's libsystemd.so.0). */
static int list_depends(const char *name, struct pkg **out, int *nr, char *err, size_t errlen)
{
	char *argv[] = {"apt-cache",	 "depends",	   "--recurse",	  "--no-recommends",
			"--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
			"--no-enhances", (char *)name,	   NULL};
	char *text;
	char terr[IMAGE_ERRLEN];
	int r = tool_output(argv, &text, terr, sizeof(terr));
	if (r || !text[0]) {
		free(text);
		snprintf(err, errlen, "package '%s': not found in the APT lists%s%s%s", name,
			 r ? " (" : "", r ? terr : "", r ? ")" : "");
		return -ENOENT;
	}
	struct stanza *st = calloc(MAX_PKGS, sizeof(*st));
	struct pkg *p = calloc(MAX_PKGS, sizeof(*p));
	int ns = 0, n = 0;
	if (!st || !p) {
		r = -ENOMEM;
		goto out;
	}
	struct stanza *cur = NULL;
	bool in_alt = false, want_provider = false; /* the previous line's state */
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] != ' ') {
			cur = NULL;
			if (l[0] == '<' || ns == MAX_PKGS)
				continue;
			cur = &st[ns++];
			cur->name = l;
			in_alt = want_provider = false;
			continue;
		}
		if (!cur)
			continue;
		if (!strncmp(l, "    ", 4)) {
			/* A provider of the virtual package just named. */
			if (want_provider && cur->nr < 64)
				cur->deps[cur->nr++] = l + 4;
			want_provider = false;
			continue;
		}
		char *dep = NULL;
		bool alt = false;
		if (!strncmp(l, "  Depends: ", 11) || !strncmp(l, " |Depends: ", 11))
			dep = l + 11, alt = l[1] == '|';
		else if (!strncmp(l, "  PreDepends: ", 14) || !strncmp(l, " |PreDepends: ", 14))
			dep = l + 14, alt = l[1] == '|';
		want_provider = false;
		if (!dep)
			continue;
		bool first = !in_alt;
		in_alt = alt;
		if (!first)
			continue;
		if (dep[0] == '<')
			want_provider = true;
		else if (cur->nr < 64)
			cur->deps[cur->nr++] = dep;
	}
	/* Breadth first from the package asked for. */
	if (ns && valid_name(name) && (p[n++].name = strdup(name)) == NULL)
		r = -ENOMEM;
	for (int i = 0; !r && i < n; i++) {
		struct stanza *s = NULL;
		for (int j = 0; j < ns && !s; j++)
			if (!strcmp(st[j].name, p[i].name))
				s = &st[j];
		for (int k = 0; s && k < s->nr && !r; k++) {
			const char *d = s->deps[k];
			if (!valid_name(d) || pkg_find(p, n, d))
				continue;
			if (n == MAX_PKGS) {
				snprintf(err, errlen, "package '%s': more than %d dependencies",
					 name, MAX_PKGS);
				r = -E2BIG;
			} else if (!(p[n++].name = strdup(d))) {
				r = -ENOMEM;
			}
		}
	}
	if (!r && !n) {
		snprintf(err, errlen, "package '%s': not found in the APT lists", name);
		r = -ENOENT;
	}
out:
	free(st);
	free(text);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (r) {
		pkgs_free(p, n);
		return r;
	}
	*out = p;
	*nr = n;
	return 0;
}

/* Fill in each package's source package name (apt-cache show). */
static int read_sources(struct pkg *p, int n, char *err, size_t errlen)
{
	char **argv = calloc((size_t)n + 4, sizeof(char *));
	if (!argv)
		return -ENOMEM;
	argv[0] = "apt-cache";
	argv[1] = "show";
	argv[2] = "--no-all-versions";
	for (int i = 0; i < n; i++)
		argv[3 + i] = p[i].name;
	char *text;
	int r = tool_output(argv, &text, err, errlen);
	free(argv);
	if (r)
		return r;
	struct pkg *cur = NULL;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "Package: ", 9)) {
			cur = pkg_find(p, n, l + 9);
			if (cur && !cur->source)
				cur->source = strdup(l + 9);
		} else if (cur && !strncmp(l, "Section: ", 9)) {
			cur->lib = !strcmp(l + 9, "libs") || !strcmp(l + 9, "oldlibs");
		} else if (cur && !strncmp(l, "Source: ", 8)) {
			free(cur->source);
			cur->source = strndup(l + 8, strcspn(l + 8, " "));
		}
	}
	free(text);
	return 0;
}

/* Names of the .debs apt-get download would write, and fetch the missing
 * ones into dir. */
static int download(const struct image_spec *spec, struct pkg *p, int n, const char *dir, char *err,
		    size_t errlen)
{
	char **argv = calloc((size_t)n + 4, sizeof(char *));
	if (!argv)
		return -ENOMEM;
	int k = 0;
	argv[k++] = "apt-get";
	argv[k++] = "download";
	argv[k++] = "--print-uris";
	for (int i = 0; i < n; i++)
		argv[k++] = p[i].name;
	char *text;
	int r = tool_output(argv, &text, err, errlen);
	if (r) {
		free(argv);
		return r;
	}
	/* 'URL' NAME_VERSION_ARCH.deb SIZE HASH, in apt's order */
	char *save = NULL;
	int i = 0;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');
		if (l[0] != '\'' || !sp)
			continue;
		char *file = sp + 1, *end = strchr(file, ' ');
		if (!end)
			continue;
		*end = '\0';
		if (strchr(file, '/') || file[0] == '.') {
			snprintf(err, errlen, "apt-get: odd file name '%s'", file);
			r = -EINVAL;
			break;
		}
		struct pkg *q = NULL;
		for (int j = 0; j < n && !q; j++) {
			size_t nl = strlen(p[j].name);
			if (!p[j].file && !strncmp(file, p[j].name, nl) && file[nl] == '_')
				q = &p[j];
		}
		if (!q)
			continue;
		if (!(q->file = strdup(file)))
			r = -ENOMEM;
		i++;
	}
	free(text);
	if (!r && i != n) {
		snprintf(err, errlen, "apt-get download --print-uris: %d of %d packages listed", i,
			 n);
		r = -EIO;
	}
	/* Fetch what the cache lacks. */
	k = 2;
	int cached = 0;
	for (i = 0; !r && i < n; i++) {
		char path[PATH_MAX * 2];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, p[i].file);
		if (!stat(path, &st) && st.st_size > 0)
			cached++;
		else
			argv[k++] = p[i].name;
	}
	argv[k] = NULL;
	image_progress(spec, "download", "%d packages (%d cached) into %s", n, cached, dir);
	if (!r && k > 2)
		r = tool_run_in(dir, argv, -1, -1, err, errlen);
	free(argv);
	return r;
}

/* The conffiles a package declares (dpkg-deb -I DEB conffiles). */
static char *conffiles(const char *deb)
{
	char *argv[] = {"dpkg-deb", "-I", (char *)deb, "conffiles", NULL}, *text, err[64];
	return tool_output(argv, &text, err, sizeof(err)) ? NULL : text;
}

static int extract(const char *deb, const char *dir, char *err, size_t errlen)
{
	char *argv[] = {"dpkg-deb", "-x", (char *)deb, (char *)dir, NULL};
	if (mkdir(dir, 0755) && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	return tool_run(argv, -1, -1, err, errlen);
}

int deb_fetch(const struct image_spec *spec, const char *staging, struct deb_set *d, char *err,
	      size_t errlen)
{
	memset(d, 0, sizeof(*d));
	if (!valid_name(spec->package)) {
		snprintf(err, errlen, "package '%s': not a Debian package name", spec->package);
		return -EINVAL;
	}
	image_progress(spec, "download", "resolving the dependencies of %s", spec->package);
	struct pkg *all;
	int n;
	int r = list_depends(spec->package, &all, &n, err, errlen);
	if (r)
		return r;
	if ((r = read_sources(all, n, err, errlen)))
		goto out;
	const char *src = pkg_find(all, n, spec->package)->source;
	/* Keep own packages and libraries; drop the rest (perl, adduser, ...). */
	struct pkg *keep = calloc((size_t)n, sizeof(*keep));
	int nk = 0;
	if (!keep) {
		r = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		bool own = !strcmp(all[i].name, spec->package) ||
			   (src && all[i].source && !strcmp(all[i].source, src));
		size_t len = strlen(all[i].name);
		bool lib = all[i].lib || (!strncmp(all[i].name, "lib", 3) &&
					  !(len > 5 && !strcmp(all[i].name + len - 5, "-perl")));
		if (own || lib) {
			keep[nk] = all[i];
			keep[nk++].own = own;
			memset(&all[i], 0, sizeof(all[i]));
		}
	}
	char cache[PATH_MAX - 64];
	if ((r = tool_cache_dir(cache, sizeof(cache)))) {
		snprintf(err, errlen, "cache directory: %s", strerror(-r));
		goto out_keep;
	}
	char debs[PATH_MAX];
	snprintf(debs, sizeof(debs), "%s/debs", cache);
	if (mkdir(debs, 0755) && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", debs, strerror(errno));
		goto out_keep;
	}
	if ((r = download(spec, keep, nk, debs, err, errlen)))
		goto out_keep;
	char path[PATH_MAX * 2], dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/pool", staging);
	d->root = strdup(dir);
	d->own = calloc((size_t)nk, sizeof(char *));
	d->own_names = calloc((size_t)nk, sizeof(char *));
	struct wbuf cf = {0};
	if (!d->root || !d->own || !d->own_names) {
		r = -ENOMEM;
		goto out_keep;
	}
	image_progress(spec, "extract", "%d packages into %s", nk, dir);
	for (int i = 0; !r && i < nk; i++) {
		snprintf(path, sizeof(path), "%s/%s", debs, keep[i].file);
		r = extract(path, dir, err, errlen);
		if (r || !keep[i].own)
			continue;
		char odir[PATH_MAX];
		snprintf(odir, sizeof(odir), "%s/own-%s", staging, keep[i].name);
		r = extract(path, odir, err, errlen);
		d->own[d->nr_own] = strdup(odir);
		d->own_names[d->nr_own++] = strdup(keep[i].name);
		char *c = conffiles(path);
		if (c) {
			wbuf_put(&cf, "\n", 1);
			wbuf_put(&cf, c, strlen(c));
		}
		free(c);
	}
	wbuf_put(&cf, "\n", 2);
	d->conffiles = (char *)cf.p;
	if (!r && wbuf_error(&cf))
		r = -ENOMEM;
	if (!r)
		image_progress(spec, "extract", "%d packages unpacked, %d of them %s's own", nk,
			       d->nr_own, spec->package);
out_keep:
	pkgs_free(keep, nk);
out:
	pkgs_free(all, n);
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (r)
		deb_set_free(d);
	return r;
}

void deb_set_free(struct deb_set *d)
{
	for (int i = 0; i < d->nr_own; i++) {
		free(d->own[i]);
		free(d->own_names[i]);
	}
	free(d->own);
	free(d->own_names);
	free(d->root);
	free(d->conffiles);
	memset(d, 0, sizeof(*d));
}
