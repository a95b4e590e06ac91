/* The command-line layer: one file per verb, shared option parsing. Only
 * this layer prints messages for the user and chooses exit codes. */
#ifndef WISP_CLI_H
#define WISP_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"	/* opt_parse_* */
#include "vmm/config.h" /* exit codes, memory limits, the VM configuration */

/* What `wisp run` was asked to do: a VM configuration and how to run it. */
struct run_config {
	struct vm_config vm;	 /* from the flags, --config FILE or the snapshot */
	uint64_t timeout_ms;	 /* 0: none */
	bool stats;		 /* print exit statistics on stderr at the end */
	const char *config_file; /* --config FILE */
	const char *image_file;	 /* --image IMG: a `wisp image` image, with --kernel */
	bool vm_flags;		 /* some option describing the VM was given */
	bool seccomp_off;	 /* --seccomp=off: no filters (debugging) */
	/* Snapshots (run_restore.c, run_control.c) */
	const char *name;	/* --name: a control socket, so that `wisp save NAME` works */
	const char *restore;	/* --restore FILE */
	bool verify;		/* --verify: check the snapshot's memory first */
	bool quiet;		/* --quiet: no progress line for --restore */
	struct snap_file *snap; /* the snapshot being restored, else NULL */
	char *config;		/* the CONFIG record of this VM's snapshots */
	size_t config_len;
	bool jail; /* --jail: the VM runs jailed (run_jail.c) */
	/* Pre-created VMs (wisp-oci's `created`): once the VM is built, a NUL
	 * byte goes to ready_fd (an error line instead if it cannot be), then
	 * the guest starts when a byte can be read from start_fd. -1: none. */
	int ready_fd, start_fd;
};
struct snap_file;

/* --- cmd_run.c ---------------------------------------------------------- */
/* Parse `wisp run` arguments (argv[0] is "run") into cfg; on error writes a
 * one-line message into err and returns -1. */
int run_parse_args(int argc, char **argv, struct run_config *cfg, char *err, size_t errlen);
/* Fill cfg->config, the CONFIG record of this VM's snapshots: the tag and
 * cfg->vm as JSON, host paths absolute, disk sizes recorded; -1 if out of
 * memory. */
int run_config_record(struct run_config *cfg);
/* `wisp run`: boot an image in the foreground; returns the process exit code. */
int cmd_run(int argc, char **argv);
/* --- cmd_check.c: can this host run Wisp VMs? Exit 0 if so ------------- */
int cmd_check(int argc, char **argv);
/* --- cmd_image.c: `wisp image build|inspect|boot-info` (src/image/) ------ */
int cmd_image(int argc, char **argv);
struct vm;
/* Run a prepared VM in the foreground: SIGINT/SIGTERM/--timeout stop it;
 * with --name, its control socket serves snapshots meanwhile. -1 (printed)
 * if the control socket cannot be opened. */
int run_vm_foreground(struct vm *vm, const struct run_config *cfg);
/* Build cfg->vm (booted, or with cfg->snap restored) and run it in the
 * foreground; returns the process exit code. */
int run_built(struct run_config *cfg);
/* Tell the user how the VM stopped; returns the process exit code. */
int run_outcome(struct vm *vm, const struct run_config *cfg);
/* Print the exit counters on stderr (--stats). */
void run_print_stats(struct vm *vm);

/* --- run_jail.c: wisp run --jail ------------------------------------------ */
/* Fork the jailed child: returns 0 in the child (which goes on to run the
 * VM), or 1 in this process, the supervisor, once the child ended (or could
 * not start), with the exit code in *code. */
int run_jail_start(struct run_config *cfg, int *code);
/* In the child, with the VM built and its control socket bound: enter the
 * jail (a no-op without --jail). */
int run_jail_enter(struct vm *vm, const struct run_config *cfg, char *err, size_t errlen);

/* --- run_restore.c ------------------------------------------------------- */
/* `wisp run --restore FILE`: bring a saved VM back in the foreground, with
 * the devices its snapshot names; returns the process exit code. */
int run_restore(struct run_config *cfg);
/* Start / stop the control socket of a `wisp run --name` VM (run_control.c). */
int run_control_start(struct vm *vm, const struct run_config *cfg, char *err, size_t errlen);
void run_control_stop(void);

/* --- run_linux.c: the terminal and panic watch of a Linux guest ---------- */
struct serial;
struct linux_watch;
/* Watch the Linux console for a kernel panic, and give the guest the
 * terminal (raw mode); NULL if out of memory. */
struct linux_watch *run_linux_watch(struct vm *vm, struct serial *console);
/* After the run: restore the terminal, and turn a panic into
 * WISP_EXIT_CRASH with the last console lines; else returns code. Frees w. */
int run_linux_outcome(struct linux_watch *w, int code);

/* --- client.c: talking to wispd (the client verbs) ------------------------ */
struct json_t;

/* An answer from wispd: HTTP status and the body parsed as JSON (or NULL). */
struct api_reply {
	long status;
	struct json_t *json;
	char *body;
};

/* Load libcurl and jansson; false (printed why) if they are missing. */
bool client_init(void);
/* Use this API socket (--socket); else $WISP_SOCKET, else the default. */
void client_set_socket(const char *path);
/* The socket the client talks to. */
const char *client_socket(void);
/* One request (body is consumed). 0 on a 2xx answer; otherwise prints why
 * (daemon unreachable, or its error message) and returns -1. */
int api_call(const char *method, const char *path, struct json_t *body, struct api_reply *r);
/* The same without a body, printing nothing when the daemon answers with
 * an error (a VM gone meanwhile): -1 then, and r is empty. */
int api_call_quiet(const char *method, const char *path, struct api_reply *r);
/* Free an answer. */
void api_reply_free(struct api_reply *r);
/* GET path and copy the streamed body to stdout until the daemon ends it. */
int api_stream(const char *path);
/* "/vms/VM[/sub]" for a VM name or id given by the user; -1 (printed) if
 * it cannot be one. */
int client_vm_path(const char *vm, const char *sub, char *buf, size_t len);
/* Close the connection. */
void client_close(void);
/* JSON access for the verbs (jansson, loaded with libcurl). Getters return
 * NULL, "" or 0 when the member is absent. */
struct json_t *jget(struct json_t *o, const char *key);
const char *jstr(struct json_t *o, const char *key);
long long jint(struct json_t *o, const char *key);
double jnum(struct json_t *o, const char *key);
void jset_true(struct json_t *o, const char *key);
bool jhas(struct json_t *o, const char *key);
size_t jlen(struct json_t *a);
struct json_t *jat(struct json_t *a, size_t i);
struct json_t *jnew_object(void);
struct json_t *jnew_array(void);
void jset_str(struct json_t *o, const char *key, const char *v);
void jset_int(struct json_t *o, const char *key, long long v);
void jset(struct json_t *o, const char *key, struct json_t *v); /* steals v */
void jpush_str(struct json_t *a, const char *v);
void jfree(struct json_t *o);
/* Parse JSON text (NULL if it is not JSON). */
struct json_t *jparse(const char *text);
/* Print o as indented JSON. */
void jprint(struct json_t *o);

/* --- the client verbs (cmd_<verb>.c) --------------------------------------- */
int cmd_create(int argc, char **argv);
int cmd_destroy(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_daemon(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_clone(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_receive(int argc, char **argv);
/* --- run_control.c: the control socket of `wisp run --name` VMs ----------- */
/* <runtime-dir>/run/NAME.sock; -ENAMETOOLONG if it does not fit. */
int run_control_path(const char *name, char *buf, size_t len);
/* Is there a `wisp run --name NAME` VM's socket? */
bool run_control_exists(const char *name);
/* Ask that VM to save itself to file (absolute); prints the outcome and
 * returns the exit code. */
int run_control_save(const char *name, const char *file);
/* An absolute version of a path given on the command line (wispd does not
 * know the client's working directory). */
void client_abs_path(const char *path, char *out, size_t len);
/* Shared by pause and resume: POST /vms/VM/<action> for each VM. */
int client_vm_action(int argc, char **argv, const char *action, const char *usage);
/* The command line main() was given (for client_exec). */
extern char **cli_argv;
/* Run the same command line with `wisp-client`, the dynamic build next to
 * this binary (see main.c); returns only on failure, with the exit code. */
int client_exec(void);
/* Report a getopt error of a client verb (one line + usage); returns the
 * exit code. */
int client_bad_option(const char *verb, char **argv, const char *usage);
/* Parse a client verb's options: --socket, --help and, if flag_name is not
 * NULL, one boolean flag (--flag_name, or -flag_short when not 0) set in
 * *flag. Returns true when the verb must return *code now (after --help, or
 * a bad option reported in one line); false to go on, optind at the first
 * operand. */
bool client_options(int argc, char **argv, const char *usage, const char *flag_name,
		    char flag_short, bool *flag, int *code);

/* Options every client verb takes (getopt_long entries). */
#define CLIENT_OPTIONS                                                                             \
	{"socket", required_argument, NULL, 'S'},                                                  \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

#endif
