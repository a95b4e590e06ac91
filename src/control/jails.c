/* wispd's side of the VMM jail (security/jail.c, docs/security.md): as
 * root, every VMM gets a uid of its own from --jail-uid-range (a lock file
 * per uid under <runtime-dir>/jail/uids, held by the VMM for its whole life,
 * so that its death frees the uid even while wispd is away), an empty
 * directory <runtime-dir>/jail/<id> for its root, and a cgroup
 * <cgroup2>/wisp/<id> with limits on memory, CPU and pids. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "control/wispd.h"
#include "security/security.h"

int jails_init(struct wispd *d, char *err, size_t errlen)
{
	d->jail_fd = d->uids_fd = -1;
	bool root = geteuid() == 0;
	d->jail = d->cfg.jail_mode > 0 || (d->cfg.jail_mode < 0 && root);
	if (!d->jail)
		return 0;
	if (!root) {
		snprintf(err, errlen,
			 "--jail on needs root (a uid of its own, a mount namespace and cgroups "
			 "for each VMM): run wispd as root, or use --jail auto");
		return -EPERM;
	}
	if ((mkdirat(d->run_fd, "jail", 0711) < 0 && errno != EEXIST) ||
	    (d->jail_fd = openat(d->run_fd, "jail",
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    (mkdirat(d->jail_fd, "uids", 0700) < 0 && errno != EEXIST) ||
	    (d->uids_fd = openat(d->jail_fd, "uids",
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "jail directory %s/jail: %s", d->cfg.runtime_dir,
			 strerror(errno));
		return -errno;
	}
	char why[256];
	if (jail_cgroup_init(d->cgroup_base, sizeof(d->cgroup_base), why, sizeof(why)) == 0) {
		d->cgroups = true;
	} else {
		log_warn(NULL, "VMs get no cgroup limits: %s", why);
		d->cgroup_base[0] = 0;
	}
	d->uid_hint = (uint32_t)getpid();
	return 0;
}

int jails_spawn_prepare(struct wispd *d, struct vmm *v, uint64_t mem, struct jail_spawn *js,
			char *err, size_t errlen)
{
	js->lock_fd = -1;
	js->dir[0] = js->cgroup[0] = 0;
	if (!d->jail)
		return 0;
	uid_t uid;
	int fd = jail_claim_uid(d->uids_fd, &d->cfg.jail_range, &d->uid_hint, &uid);
	if (fd < 0) {
		snprintf(err, errlen, "no free jail uid in %u-%u: %s", d->cfg.jail_range.first,
			 d->cfg.jail_range.last, fd == -EUSERS ? "all taken" : strerror(-fd));
		return fd;
	}
	if (mkdirat(d->jail_fd, v->id, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "jail directory %s/jail/%s: %s", d->cfg.runtime_dir, v->id,
			 strerror(e));
		close(fd);
		return -e;
	}
	if (d->cgroups) {
		struct jail_limits l;
		jail_limits_default(&l, mem, 1);
		if (!mem) /* a migration receiver: its size comes from the source */
			l.mem_max = 0;
		int r = jail_cgroup_create(d->cgroup_base, v->id, &l, err, errlen);
		if (r) {
			unlinkat(d->jail_fd, v->id, AT_REMOVEDIR);
			close(fd);
			return r;
		}
		snprintf(js->cgroup, sizeof(js->cgroup), "%s/%s", d->cgroup_base, v->id);
	}
	snprintf(js->dir, sizeof(js->dir), "%s/jail/%s", d->cfg.runtime_dir, v->id);
	snprintf(js->uid, sizeof(js->uid), "%u", (unsigned)uid);
	js->lock_fd = fd;
	v->jailed = true;
	v->jail_uid = uid;
	return 0;
}

int jails_set_limits(struct wispd *d, struct vmm *v, const struct jail_limits *l, bool asked,
		     char *err, size_t errlen)
{
	if (!v || !v->jailed || !d->cgroups) {
		if (!asked)
			return 0;
		snprintf(err, errlen, "the configuration asks for cgroup limits, which %s",
			 !d->jail ? "need the jail (wispd as root, --jail on or auto)"
				  : "this host cannot give (see wispd's log)");
		return -ENOTSUP;
	}
	return jail_cgroup_set(d->cgroup_base, v->id, l, err, errlen);
}

/* Try to remove the cgroups of VMMs that are gone; those whose process is
 * still exiting stay listed. */
void jails_sweep(struct wispd *d)
{
	unsigned k = 0;
	for (unsigned i = 0; i < d->nr_cg_dead; i++) {
		int r = jail_cgroup_remove(d->cgroup_base, d->cg_dead[i]);
		if (r == -EBUSY && d->cg_dead_tries[i]++ < 200) {
			memmove(d->cg_dead[k], d->cg_dead[i], sizeof(d->cg_dead[i]));
			d->cg_dead_tries[k++] = d->cg_dead_tries[i];
		} else if (r) {
			log_warn(d->cg_dead[i], "cannot remove cgroup %s/%s: %s", d->cgroup_base,
				 d->cg_dead[i], strerror(-r));
		}
	}
	d->nr_cg_dead = k;
}

/* Remove the jail directory and cgroup of VMM id; a cgroup still in use
 * is retried by jails_sweep. */
static void release_id(struct wispd *d, const char *id)
{
	/* The directory is the VMM's root only inside its own mount
	 * namespace: here it is empty, and removable while the VMM lives. */
	unlinkat(d->jail_fd, id, AT_REMOVEDIR);
	if (!d->cgroups)
		return;
	if (jail_cgroup_remove(d->cgroup_base, id) != -EBUSY)
		return;
	/* Still exiting (a SIGKILLed VMM tears its VM down for a few ms):
	 * removed once it is out (jails_sweep). */
	if (d->nr_cg_dead == d->cap_cg_dead) {
		unsigned cap = d->cap_cg_dead ? d->cap_cg_dead * 2 : 16;
		char(*n)[CTL_ID_LEN + 1] = realloc(d->cg_dead, cap * sizeof(*n));
		unsigned *t = realloc(d->cg_dead_tries, cap * sizeof(*t));
		if (n)
			d->cg_dead = n;
		if (t)
			d->cg_dead_tries = t;
		if (!n || !t)
			return;
		d->cap_cg_dead = cap;
	}
	snprintf(d->cg_dead[d->nr_cg_dead], sizeof(d->cg_dead[0]), "%s", id);
	d->cg_dead_tries[d->nr_cg_dead++] = 0;
	wispd_update_timer(d);
}

void jails_release(struct wispd *d, struct vmm *v)
{
	if (!v->jailed || v->jail_released)
		return;
	v->jail_released = true;
	release_id(d, v->id);
}

void jails_adopt(struct wispd *d)
{
	if (d->jail_fd < 0)
		return;
	int fd = dup(d->jail_fd);
	DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dp) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(dp))) {
		if (!ctl_valid_id(e->d_name)) /* ., .., uids/, wisp run's run-PID */
			continue;
		struct vmm *v = table_find(d, e->d_name);
		if (v && !strcmp(v->id, e->d_name)) {
			v->jailed = true; /* its saves go through a file we open */
			if (v->gone || v->fd < 0)
				jails_release(d, v);
		} else { /* a shell of the last wispd, or a VM that is gone */
			release_id(d, e->d_name);
		}
	}
	closedir(dp);
}
