/* Snapshot files: an atomic save (temporary file, fsync, rename, fsync of
 * the directory) that writes only the guest's populated memory (a sparse
 * file), and a restore that maps the memory section privately so that its
 * cost does not grow with the guest's size. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "security/security.h"
#include "snapshot/snapshot.h"

#define CHUNK (1u << 20) /* memory is written and hashed 1 MiB at a time */

struct extents {
	struct snap_extent *e;
	uint64_t n, cap;
};

static int add_extent(void *opaque, uint64_t off, uint64_t len)
{
	struct extents *x = opaque;
	if (x->n == x->cap) {
		uint64_t cap = x->cap ? x->cap * 2 : 64;
		struct snap_extent *e = realloc(x->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		x->e = e;
		x->cap = cap;
	}
	x->e[x->n++] = (struct snap_extent){.off = off, .len = len};
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Write the extents of guest memory at mem_off, hashing as we go. */
static int write_memory(int fd, const struct guest_mem *mem, uint64_t mem_off, struct extents *x,
			uint64_t *bytes)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return -ENOMEM;
	int r = 0;
	for (uint64_t i = 0; !r && i < x->n; i++) {
		struct snap_extent *e = &x->e[i];
		XXH3_64bits_reset(st);
		for (uint64_t done = 0; !r && done < e->len;) {
			size_t n = e->len - done < CHUNK ? (size_t)(e->len - done) : CHUNK;
			const uint8_t *p = mem->base + e->off + done;
			XXH3_64bits_update(st, p, n);
			r = pwrite_all(fd, p, n, mem_off + e->off + done);
			done += n;
		}
		e->hash = XXH3_64bits_digest(st);
		*bytes += e->len;
	}
	XXH3_freeState(st);
	return r;
}

void snap_target_abort(struct snap_target *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->dfd >= 0 && t->tmp[0])
		unlinkat(t->dfd, t->tmp, 0);
	if (t->dfd >= 0)
		close(t->dfd);
	t->fd = t->dfd = -1;
	t->tmp[0] = 0;
}

int snap_target_open(const char *path, struct snap_target *t, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->fd = t->dfd = -1;
	char *d1 = strdup(path), *b1 = strdup(path);
	int r = 0;
	if (!d1 || !b1) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	const char *dir = dirname(d1), *base = basename(b1);
	if (!*base || !strcmp(base, "/") || !strcmp(base, ".") || !strcmp(base, "..")) {
		snprintf(err, errlen, "snapshot file '%s': not a file name", path);
		r = -EINVAL;
		goto out;
	}
	if (strlen(path) >= sizeof(t->path) || strlen(base) >= sizeof(t->base)) {
		snprintf(err, errlen, "snapshot file '%.200s': name too long", path);
		r = -ENAMETOOLONG;
		goto out;
	}
	snprintf(t->path, sizeof(t->path), "%s", path);
	snprintf(t->base, sizeof(t->base), "%s", base);
	t->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dfd < 0) {
		r = -errno;
		snprintf(err, errlen, "snapshot directory '%s': %s", dir, strerror(-r));
		goto out;
	}
	struct stat sb;
	if (fstatat(t->dfd, base, &sb, 0) == 0 && S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "snapshot file '%s' is a directory", path);
		r = -EISDIR;
		goto out;
	}
	uint32_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd = (uint32_t)util_now_ns();
	snprintf(t->tmp, sizeof(t->tmp), ".%.200s.%d.%08x.tmp", base, (int)getpid(), rnd);
	/* Guest memory may hold secrets: the file is for its owner only. */
	t->fd = openat(t->dfd, t->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (t->fd < 0) {
		r = -errno;
		t->tmp[0] = 0;
		snprintf(err, errlen, "snapshot file '%s': cannot create it in '%s': %s", path, dir,
			 strerror(-r));
		goto out;
	}
out:
	if (r)
		snap_target_abort(t);
	free(d1);
	free(b1);
	return r;
}

int snap_target_commit(struct snap_target *t, int *old_fd, uint64_t *sync_ns, char *err,
		       size_t errlen)
{
	uint64_t t1 = util_now_ns();
	if (old_fd)
		*old_fd = -1;
	close(t->fd);
	t->fd = -1;
	int old = old_fd ? openat(t->dfd, t->base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (renameat(t->dfd, t->tmp, t->dfd, t->base) < 0) {
		int r = -errno;
		if (old >= 0)
			close(old);
		snprintf(err, errlen, "snapshot file '%s': rename: %s", t->path, strerror(-r));
		snap_target_abort(t);
		return r;
	}
	t->tmp[0] = 0;
	if (old_fd)
		*old_fd = old;
	fsync(t->dfd);
	close(t->dfd);
	t->dfd = -1;
	if (sync_ns)
		*sync_ns += util_now_ns() - t1;
	return 0;
}

int snap_save_fd(struct vm *vm, int fd, const char *name, const char *config, size_t config_len,
		 struct snap_times *t, char *err, size_t errlen)
{
	uint64_t t0 = util_now_ns();
	struct snap_times tm = {0};
	int r;
	bool quiesced = false;
	struct wbuf st = {0};
	struct extents x = {0};
	struct stat fsb;
	if (fstat(fd, &fsb) < 0 || !S_ISREG(fsb.st_mode) || fsb.st_size != 0) {
		snprintf(err, errlen, "snapshot file '%s': not an empty regular file", name);
		r = -EINVAL;
		goto out;
	}

	/* State first (the VM is paused): it is small, and devices that
	 * cannot be saved fail here, before anything large is written. */
	uint64_t t1 = util_now_ns();
	snap_quiesce(vm, true);
	quiesced = true;
	if ((r = snap_save_state(vm, config, config_len, &st, err, errlen)))
		goto out;
	if ((r = gmem_extents(&vm->mem, add_extent, &x))) {
		snprintf(err, errlen, "finding guest memory in use: %s", strerror(-r));
		goto out;
	}
	size_t map_at = st.len + sizeof(struct snap_rec);
	snap_put_rec(&st, SNAP_REC_MEMMAP, 1, x.n * sizeof(struct snap_extent));
	wbuf_reserve(&st, x.n * sizeof(struct snap_extent));
	snap_put_rec(&st, SNAP_REC_END, 1, 0);
	if ((r = wbuf_error(&st))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	tm.state = util_now_ns() - t1;
	uint64_t mem_off = (SNAP_HEADER_SIZE + st.len + 4095) & ~4095ull;

	/* The memory section: only what the guest populated; the rest stays
	 * a hole in a sparse file. */
	t1 = util_now_ns();
	if (ftruncate(fd, (off_t)(mem_off + vm->mem.size)) < 0) {
		r = -errno;
		snprintf(err, errlen, "snapshot file '%s': %s", name, strerror(-r));
		goto out;
	}
	if ((r = write_memory(fd, &vm->mem, mem_off, &x, &tm.mem_bytes))) {
		snprintf(err, errlen, "writing snapshot file '%s': %s", name, strerror(-r));
		goto out;
	}
	memcpy(st.p + map_at, x.e, x.n * sizeof(struct snap_extent));
	tm.memory = util_now_ns() - t1;
	snap_quiesce(vm, false); /* guest memory is in the file: devices may go on */
	quiesced = false;

	uint8_t hdr[SNAP_HEADER_SIZE] = {0};
	struct snap_header h;
	snap_fill_header(&h, st.p, st.len, vm->mem.size);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	h.created_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	h.header_hash = snap_hash(&h, offsetof(struct snap_header, header_hash));
	memcpy(hdr, &h, sizeof(h));
	if ((r = pwrite_all(fd, hdr, sizeof(hdr), 0)) ||
	    (r = pwrite_all(fd, st.p, st.len, SNAP_HEADER_SIZE))) {
		snprintf(err, errlen, "writing snapshot file '%s': %s", name, strerror(-r));
		goto out;
	}
	/* Durable before it takes the name: a crash leaves the old file or
	 * the new one, never half of one. */
	t1 = util_now_ns();
	if (fsync(fd) < 0) {
		r = -errno;
		snprintf(err, errlen, "snapshot file '%s': fsync: %s", name, strerror(-r));
		goto out;
	}
	tm.sync = util_now_ns() - t1;
	r = 0;
out:
	if (quiesced)
		snap_quiesce(vm, false);
	free(x.e);
	wbuf_free(&st);
	tm.total = util_now_ns() - t0;
	if (t)
		*t = tm;
	return r;
}

int snap_save_file(struct vm *vm, const char *path, const char *config, size_t config_len,
		   struct snap_times *t, int *old_fd, char *err, size_t errlen)
{
	if (old_fd)
		*old_fd = -1;
	uint64_t t0 = util_now_ns();
	struct snap_target tg;
	struct snap_times tm = {0};
	int r = snap_target_open(path, &tg, err, errlen);
	if (!r) {
		r = snap_save_fd(vm, tg.fd, path, config, config_len, &tm, err, errlen);
		if (r)
			snap_target_abort(&tg);
		else
			r = snap_target_commit(&tg, old_fd, &tm.sync, err, errlen);
	}
	tm.total = util_now_ns() - t0;
	if (t)
		*t = tm;
	return r;
}

int snap_open_fd(int fd, struct snap_file *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s", strerror(e));
		return -e;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		return -EINVAL;
	}
	f->size = (uint64_t)sb.st_size;
	uint8_t hdr[sizeof(struct snap_header)] = {0};
	size_t want = f->size < sizeof(hdr) ? (size_t)f->size : sizeof(hdr);
	int r = want ? pread_all(fd, hdr, want, 0) : 0;
	if (r) {
		snprintf(err, errlen, "reading the header: %s", strerror(-r));
		return r;
	}
	memcpy(&f->hdr, hdr, sizeof(f->hdr));
	if ((r = snap_check_header(&f->hdr, f->size, err, errlen)))
		return r;
	f->state = malloc(f->hdr.state_len);
	if (!f->state) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((r = pread_all(fd, f->state, f->hdr.state_len, f->hdr.state_off))) {
		snprintf(err, errlen, "reading the state: %s", strerror(-r));
		return r;
	}
	if (snap_hash(f->state, f->hdr.state_len) != f->hdr.state_hash) {
		snprintf(err, errlen, "snapshot state is corrupted (checksum mismatch)");
		return -EINVAL;
	}
	return snap_parse_state(f->state, f->hdr.state_len, f->hdr.mem_size, &f->img, err, errlen);
}

int snap_open(const char *path, struct snap_file *f, char *err, size_t errlen)
{
	int fd = sec_open_client_file(path); /* a FIFO must not block us */
	if (fd < 0) {
		memset(f, 0, sizeof(*f));
		f->fd = -1;
		snprintf(err, errlen, "%s", fd == -EINVAL ? "not a regular file" : strerror(-fd));
		return fd;
	}
	return snap_open_fd(fd, f, err, errlen);
}

void snap_close(struct snap_file *f)
{
	snap_image_free(&f->img);
	free(f->state);
	if (f->fd >= 0)
		close(f->fd);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

int snap_restore_file(struct vm *vm, struct snap_file *f, bool verify, struct snap_times *t,
		      char *err, size_t errlen)
{
	uint64_t t0 = util_now_ns();
	if (f->hdr.mem_size != vm->mem.size) {
		snprintf(err, errlen, "snapshot has %llu MiB of memory, this VM %llu MiB",
			 (unsigned long long)(f->hdr.mem_size >> 20),
			 (unsigned long long)(vm->mem.size >> 20));
		return -EINVAL;
	}
	int r = gmem_map_file(&vm->mem, f->fd, f->hdr.mem_off);
	if (r) {
		snprintf(err, errlen, "mapping the memory section: %s", strerror(-r));
		return r;
	}
	uint64_t t1 = util_now_ns();
	if (verify) {
		for (uint64_t i = 0; i < f->img.nr_extents; i++) {
			struct snap_extent e;
			memcpy(&e, f->img.extents + i * sizeof(e), sizeof(e));
			if (f->progress)
				progress_add(f->progress, e.len);
			if (snap_hash(vm->mem.base + e.off, e.len) != e.hash) {
				snprintf(err, errlen,
					 "snapshot memory is corrupted: checksum mismatch in the "
					 "%llu KiB at offset 0x%llx",
					 (unsigned long long)(e.len >> 10),
					 (unsigned long long)e.off);
				return -EINVAL;
			}
		}
	}
	uint64_t t2 = util_now_ns();
	r = snap_load_state(vm, &f->img, err, errlen);
	if (f->progress && !r)
		progress_update(f->progress, f->hdr.mem_size);
	if (t) {
		memset(t, 0, sizeof(*t));
		t->memory = t2 - t0;
		t->state = util_now_ns() - t2;
		t->total = util_now_ns() - t0;
		t->pause = t1 - t0; /* mapping */
	}
	return r;
}

int snap_config_record(const struct snap_file *f, struct vm_config *rec, char *err, size_t errlen)
{
	return snap_config_of(&f->img, f->hdr.mem_size, rec, err, errlen);
}

int snap_config_of(const struct snap_image *img, uint64_t mem_size, struct vm_config *rec,
		   char *err, size_t errlen)
{
	const char *c = img->config, *end = c ? c + img->config_len : NULL;
	vm_config_init(rec);
	if (!c || strcmp(c, SNAP_CONFIG_TAG)) {
		snprintf(err, errlen, "it does not hold a VM configuration (%.40s)",
			 c ? c : "no configuration record");
		return -ENOENT;
	}
	const char *json = c + sizeof(SNAP_CONFIG_TAG);
	size_t n = json < end ? strnlen(json, (size_t)(end - json)) : 0;
	char why[WISP_ERRLEN];
	int r = vm_config_from_json(json, n, NULL, rec, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "its VM's configuration: %s", why);
		return -EINVAL;
	}
	if (rec->mem != mem_size || rec->cpus != img->nr_vcpus) {
		snprintf(err, errlen, "its configuration and its state disagree on the VM's size");
		vm_config_free(rec);
		return -EINVAL;
	}
	return 0;
}
