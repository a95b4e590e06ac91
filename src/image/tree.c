/* The tree an image is made of: entries keyed by their path inside the
 * image, each with the reason it is there (the manifest). The first reason
 * given for a path wins; adding a path twice is not an error, adding it
 * with another type is. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image_int.h"

#define TREE_DEDUP_MIN (64 * 1024)

int tree_init(struct image_tree *t)
{
	memset(t, 0, sizeof(*t));
	return hmap_init(&t->map, 1024);
}

static void entry_free(struct image_entry *e)
{
	free(e->path);
	free(e->src);
	free(e->data);
	free(e->target);
	free(e->reason);
	free(e);
}

void tree_free(struct image_tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		entry_free(t->v[i]);
	free(t->v);
	hmap_destroy(&t->map);
	memset(t, 0, sizeof(*t));
}

struct image_entry *tree_find(const struct image_tree *t, const char *path)
{
	for (struct hmap_node *n = hmap_find(&t->map, hmap_hash_str(path)); n;
	     n = hmap_next_same(n)) {
		struct image_entry *e = (struct image_entry *)n;
		if (!strcmp(e->path, path))
			return e;
	}
	return NULL;
}

/* A new entry at path (parents must exist), or the existing one of the
 * same type (*fresh false); -EEXIST if path holds another type. */
static int entry_new(struct image_tree *t, const char *path, enum image_entry_type type,
		     const char *reason, struct image_entry **out, bool *fresh)
{
	struct image_entry *e = tree_find(t, path);
	*fresh = false;
	if (e) {
		*out = e;
		return e->type == type ? 0 : -EEXIST;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct image_entry **v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path)) || !(e->reason = strdup(reason))) {
		if (e)
			free(e->path);
		free(e);
		return -ENOMEM;
	}
	e->type = type;
	t->v[t->n++] = e;
	hmap_insert(&t->map, &e->node, hmap_hash_str(path));
	*out = e;
	*fresh = true;
	return 0;
}

/* Add every parent directory of path. */
static int add_parents(struct image_tree *t, const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	char *slash = strrchr(buf, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	return tree_add_dir(t, buf, 0755, "directory");
}

int tree_add_dir(struct image_tree *t, const char *path, mode_t mode, const char *reason)
{
	if (!*path)
		return 0; /* the root itself */
	int r = add_parents(t, path);
	struct image_entry *e;
	bool fresh;
	if (r || (r = entry_new(t, path, ENTRY_DIR, reason, &e, &fresh)))
		return r;
	if (fresh)
		e->mode = mode & 07777;
	return 0;
}

/* Do host files a and b hold the same bytes? (sizes already equal) */
static bool same_bytes(const char *a, const char *b)
{
	FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
	bool same = fa && fb;
	static char ba[65536], bb[65536];
	while (same) {
		size_t na = fread(ba, 1, sizeof(ba), fa), nb = fread(bb, 1, sizeof(bb), fb);
		same = na == nb && !memcmp(ba, bb, na);
		if (!na)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* An entry already in t with the same bytes as src (big files only: two
 * copies of one program, as redis-check-aof and redis-check-rdb are). */
static const struct image_entry *find_copy(const struct image_tree *t, const char *src)
{
	struct stat st, o;
	if (stat(src, &st) || st.st_size < TREE_DEDUP_MIN)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		const struct image_entry *e = t->v[i];
		if (e->type == ENTRY_FILE && e->src && !stat(e->src, &o) &&
		    o.st_size == st.st_size && same_bytes(e->src, src))
			return e;
	}
	return NULL;
}

int tree_add_file(struct image_tree *t, const char *path, const char *src, mode_t mode,
		  const char *reason)
{
	const struct image_entry *copy = tree_find(t, path) ? NULL : find_copy(t, src);
	if (copy) {
		char target[4096], why[4096 + 64];
		snprintf(target, sizeof(target), "/%s", copy->path);
		snprintf(why, sizeof(why), "%s; same bytes as %s", reason, target);
		return tree_add_symlink(t, path, target, why);
	}
	int r = add_parents(t, path);
	struct image_entry *e;
	bool fresh;
	if (r || (r = entry_new(t, path, ENTRY_FILE, reason, &e, &fresh)))
		return r;
	if (!fresh)
		return 0;
	e->mode = mode & 07777;
	return (e->src = strdup(src)) ? 0 : -ENOMEM;
}

int tree_add_data(struct image_tree *t, const char *path, const void *data, size_t size,
		  mode_t mode, const char *reason)
{
	int r = add_parents(t, path);
	struct image_entry *e;
	bool fresh;
	if (r || (r = entry_new(t, path, ENTRY_FILE, reason, &e, &fresh)))
		return r;
	/* Inline data replaces what was there: the generated files win. */
	free(e->src);
	free(e->data);
	e->src = NULL;
	e->mode = mode & 07777;
	e->data = malloc(size ? size : 1);
	if (!e->data)
		return -ENOMEM;
	memcpy(e->data, data, size);
	e->size = size;
	return 0;
}

int tree_add_symlink(struct image_tree *t, const char *path, const char *target, const char *reason)
{
	int r = add_parents(t, path);
	struct image_entry *e;
	bool fresh;
	if (r || (r = entry_new(t, path, ENTRY_SYMLINK, reason, &e, &fresh)))
		return r;
	if (!fresh)
		return 0;
	e->mode = 0777;
	return (e->target = strdup(target)) ? 0 : -ENOMEM;
}

int tree_add_chr(struct image_tree *t, const char *path, unsigned major, unsigned minor,
		 mode_t mode, const char *reason)
{
	int r = add_parents(t, path);
	struct image_entry *e;
	bool fresh;
	if (r || (r = entry_new(t, path, ENTRY_CHR, reason, &e, &fresh)))
		return r;
	e->mode = mode & 07777;
	e->rdev_major = major;
	e->rdev_minor = minor;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct image_entry *x = *(struct image_entry *const *)a;
	const struct image_entry *y = *(struct image_entry *const *)b;
	/* Compare with '/' lowest, so that a directory's entries follow it
	 * directly ("a/b" before "a-b"): the listing reads like a tree. */
	const unsigned char *p = (const unsigned char *)x->path,
			    *q = (const unsigned char *)y->path;
	for (; *p && *p == *q; p++, q++)
		;
	int cp = *p == '/' ? 1 : *p ? *p + 1 : 0;
	int cq = *q == '/' ? 1 : *q ? *q + 1 : 0;
	return cp - cq;
}

void tree_sort(struct image_tree *t)
{
	if (t->n)
		qsort(t->v, t->n, sizeof(t->v[0]), cmp_entry);
}

static const char type_char[] = {
	[ENTRY_DIR] = 'd', [ENTRY_FILE] = 'f', [ENTRY_SYMLINK] = 'l', [ENTRY_CHR] = 'c'};

int tree_manifest(struct image_tree *t, char **text)
{
	struct wbuf b = {0};
	tree_sort(t);
	for (size_t i = 0; i < t->n; i++) {
		const struct image_entry *e = t->v[i];
		uint64_t size = 0;
		struct stat st;
		if (e->type == ENTRY_FILE)
			size = e->src ? (stat(e->src, &st) ? 0 : (uint64_t)st.st_size) : e->size;
		char line[9000];
		int n = snprintf(line, sizeof(line), "%c %10llu /%s%s%s\t%s\n", type_char[e->type],
				 (unsigned long long)size, e->path,
				 e->type == ENTRY_SYMLINK ? " -> " : "",
				 e->type == ENTRY_SYMLINK ? e->target : "", e->reason);
		wbuf_put(&b, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
	wbuf_put(&b, "", 1);
	if (wbuf_error(&b)) {
		wbuf_free(&b);
		return -ENOMEM;
	}
	*text = (char *)b.p;
	return 0;
}
