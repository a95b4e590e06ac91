/* `wisp save VM FILE`: write a snapshot of a running (or paused) VM. The
 * VM runs on afterwards; a failed save leaves FILE as it was. The VM is a
 * daemon VM, or a `wisp run --name NAME` VM reached on its own control
 * socket (run_control.c). */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp save [--quiet] [--socket PATH] VM FILE\n"
			    "(a FILE without '/' goes into wispd's snapshot directory)\n";

/* The progress of a save, which another process (the VMM, or the `wisp run`
 * of the VM) writes: the size of its temporary file, ".BASE.PID.RND.tmp"
 * next to FILE (snap_save_file), looked at 10 times a second. The file is
 * sparse: its allocated blocks are what has been written. */
struct save_watch {
	struct progress pg;
	char dir[PATH_MAX], prefix[300];
	atomic_bool done;
};

static void *watch_save(void *arg)
{
	struct save_watch *w = arg;
	while (!atomic_load(&w->done)) {
		DIR *d = opendir(w->dir);
		uint64_t size = 0;
		struct dirent *e;
		while (d && (e = readdir(d))) {
			size_t n = strlen(e->d_name), pl = strlen(w->prefix);
			struct stat st;
			if (n > pl + 4 && !strncmp(e->d_name, w->prefix, pl) &&
			    !strcmp(e->d_name + n - 4, ".tmp") &&
			    !fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
			    (uint64_t)st.st_blocks * 512 > size)
				size = (uint64_t)st.st_blocks * 512;
		}
		if (d)
			closedir(d);
		if (size > w->pg.done)
			progress_update(&w->pg, size);
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Save with a progress line (total: the VM's memory, 0 if unknown); the
 * summary counts the bytes of the snapshot file. */
static int save_with_progress(const char *vm, const char *file, uint64_t total, bool quiet,
			      int (*save)(const char *vm, const char *file))
{
	static struct save_watch w;
	char what[160];
	snprintf(what, sizeof(what), "wisp: save '%.120s'", file);
	progress_start(&w.pg, what, total, quiet);
	const char *slash = strrchr(file, '/');
	snprintf(w.dir, sizeof(w.dir), "%.*s", slash ? (int)(slash - file) : 1, slash ? file : ".");
	if (!w.dir[0])
		snprintf(w.dir, sizeof(w.dir), "/");
	snprintf(w.prefix, sizeof(w.prefix), ".%.200s.", slash ? slash + 1 : file);
	atomic_store(&w.done, false);
	pthread_t t;
	bool watching = w.pg.tty && pthread_create(&t, NULL, watch_save, &w) == 0;
	int code = save(vm, file);
	atomic_store(&w.done, true);
	if (watching)
		pthread_join(t, NULL);
	struct stat st;
	if (!code && stat(file, &st) == 0) { /* the bytes written: the file is sparse */
		progress_set_total(&w.pg, (uint64_t)st.st_blocks * 512);
		progress_update(&w.pg, (uint64_t)st.st_blocks * 512);
	}
	progress_end(&w.pg, code == 0);
	return code;
}

/* A daemon VM's save: POST /vms/VM/save. */
static int save_daemon_vm(const char *vm, const char *file)
{
	char path[128];
	if (client_vm_path(vm, "save", path, sizeof(path)))
		return WISP_EXIT_ERROR;
	struct api_reply r;
	struct json_t *body = jnew_object();
	jset_str(body, "file", file);
	if (api_call("POST", path, body, &r))
		return WISP_EXIT_ERROR;
	printf("saved %s to %s (%.1f MiB of memory written, %.2f ms)\n", jstr(r.json, "name"),
	       jhas(r.json, "file") ? jstr(r.json, "file") : file,
	       jnum(r.json, "memory_bytes") / 1048576.0, jnum(r.json, "total_ms"));
	fflush(stdout);
	api_reply_free(&r);
	return 0;
}

void client_abs_path(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)))
		snprintf(out, len, "%.2000s/%.2000s", cwd, path);
	else
		snprintf(out, len, "%s", path);
}

int cmd_save(int argc, char **argv)
{
	int code;
	bool quiet = false;
	if (client_options(argc, argv, usage, "quiet", 'q', &quiet, &code))
		return code;
	if (argc - optind != 2) {
		fprintf(stderr, "wisp: save: %s\n%s",
			argc - optind < 2 ? "give a VM and a file" : "too many arguments", usage);
		return WISP_EXIT_ERROR;
	}
	const char *vm = argv[optind];
	char file[PATH_MAX];
	client_abs_path(argv[optind + 1], file, sizeof(file));
	/* A `wisp run --name` VM answers on its own socket, without wispd. */
	if (run_control_exists(vm))
		return save_with_progress(vm, file, 0, quiet, run_control_save);
	/* A plain name (no '/') goes into wispd's snapshot directory. */
	if (!strchr(argv[optind + 1], '/'))
		snprintf(file, sizeof(file), "%s", argv[optind + 1]);
	char path[128];
	if (client_vm_path(vm, NULL, path, sizeof(path)))
		return WISP_EXIT_ERROR;
	if (!client_init())
		return WISP_EXIT_ERROR;
	struct api_reply r;
	uint64_t mem = 0;
	if (api_call("GET", path, NULL, &r))
		return WISP_EXIT_ERROR;
	mem = (uint64_t)jint(r.json, "mem");
	api_reply_free(&r);
	code = save_with_progress(vm, file, mem, quiet, save_daemon_vm);
	client_close();
	return code;
}
