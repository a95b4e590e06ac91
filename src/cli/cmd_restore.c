/* `wisp restore [--name NAME] [--verify] [DEVICE...] FILE`: a daemon VM
 * from a snapshot, in a pre-created shell when one of its size is ready;
 * and `wisp clone [--name PREFIX] -n K [DEVICE...] FILE`: K of them,
 * sharing the snapshot's unchanged pages (each maps the file privately).
 * Both print the new VMs' ids. A VM with devices is given the host side of
 * each again (--disk, --net, --vsock, --console virtio,sock=PATH: wispd
 * checks them against the snapshot); for clones, "{n}" in a value becomes
 * the clone's number, and each clone gets a MAC and CID of its own unless
 * given (mac=, cid=). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "vmm/config.h"

static const char restore_usage[] =
	"usage: wisp restore [--name NAME] [--verify] [--quiet] [--socket PATH]\n"
	"                    [--disk PATH] [--net tap=NAME] [--vsock PATH]\n"
	"                    [--console virtio,sock=PATH] FILE\n";
static const char clone_usage[] =
	"usage: wisp clone -n K [--name PREFIX] [--verify] [--quiet] [--socket PATH]\n"
	"                  [--disk PATH] [--net tap=NAME[,mac=MAC]] [--vsock PATH[,cid=N]]\n"
	"                  [--console virtio,sock=PATH] FILE    ({n} in a value: the clone's "
	"number)\n";

#define MAX_DEV_OPTS 16
struct dev_opt {
	const char *flag, *value;
};

/* value with each "{n}" replaced by n, into buf. */
static void subst(const char *value, unsigned long long n, char *buf, size_t len)
{
	size_t o = 0;
	for (const char *p = value; *p && o + 1 < len;) {
		if (!strncmp(p, "{n}", 3)) {
			o += (size_t)snprintf(buf + o, len - o, "%llu", n);
			p += 3;
		} else {
			buf[o++] = *p++;
		}
	}
	buf[o < len ? o : len - 1] = 0;
}

/* The "devices" of a restore request: the host sides given (clone n). */
static struct json_t *devices_json(const struct dev_opt *opts, int nopts, unsigned long long n)
{
	struct vm_config c;
	char err[256];
	vm_config_init(&c);
	for (int i = 0; i < nopts; i++) {
		char v[PATH_MAX + 64];
		subst(opts[i].value, n, v, sizeof(v));
		if (vm_config_add_flag(&c, opts[i].flag, v, err, sizeof(err))) {
			fprintf(stderr, "wisp: %s\n", err);
			vm_config_free(&c);
			return NULL;
		}
	}
	struct json_t *a = vm_config_abs_paths(&c) ? NULL : vm_config_host_sides_to_jobj(&c, false);
	vm_config_free(&c);
	if (!a)
		fprintf(stderr, "wisp: cannot make the device paths absolute\n");
	return a;
}

/* One POST /vms {"snapshot": ...}; prints the id, counts its memory in pg. */
static int restore_one(const char *file, const char *name, bool verify, struct progress *pg,
		       bool clone, const struct dev_opt *opts, int nopts, unsigned long long n)
{
	struct api_reply r;
	struct json_t *devs = NULL;
	if (nopts && !(devs = devices_json(opts, nopts, n)))
		return WISP_EXIT_ERROR;
	struct json_t *body = jnew_object();
	jset_str(body, "snapshot", file);
	if (name)
		jset_str(body, "name", name);
	if (verify)
		jset_true(body, "verify");
	if (clone)
		jset_true(body, "clone");
	if (devs)
		jset(body, "devices", devs);
	if (api_call("POST", "/vms", body, &r))
		return WISP_EXIT_ERROR;
	printf("%s\n", jstr(r.json, "id"));
	fflush(stdout);
	progress_add(pg, (uint64_t)jint(r.json, "mem"));
	api_reply_free(&r);
	return 0;
}

static int run(int argc, char **argv, bool clone)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'N'},
		{"verify", no_argument, NULL, 'v'},
		{"count", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		{"disk", required_argument, NULL, 'D'},
		{"net", required_argument, NULL, 'T'},
		{"vsock", required_argument, NULL, 'V'},
		{"console", required_argument, NULL, 'C'},
		CLIENT_OPTIONS,
		{0},
	};
	const char *usage = clone ? clone_usage : restore_usage;
	const char *name = NULL;
	bool verify = false, quiet = false;
	uint64_t count = clone ? 0 : 1;
	struct dev_opt devs[MAX_DEV_OPTS];
	int ndevs = 0;
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, clone ? "+n:h" : "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'N':
			name = optarg;
			break;
		case 'v':
			verify = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'n':
			if (!clone || opt_parse_uint(optarg, 1, 10000, &count)) {
				fprintf(stderr,
					"wisp: %s: -n '%s': must be a number from 1 to 10000\n%s",
					argv[0], optarg, usage);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'D':
		case 'T':
		case 'V':
		case 'C':
			if (ndevs == MAX_DEV_OPTS) {
				fprintf(stderr, "wisp: %s: too many devices (at most %d)\n",
					argv[0], MAX_DEV_OPTS);
				return WISP_EXIT_ERROR;
			}
			devs[ndevs].flag = c == 'D'   ? "disk"
					   : c == 'T' ? "net"
					   : c == 'V' ? "vsock"
						      : "console";
			devs[ndevs++].value = optarg;
			break;
		case 'S':
			client_set_socket(optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return client_bad_option(argv[0], argv, usage);
		}
	}
	if (clone && !count) {
		fprintf(stderr, "wisp: clone: give the number of clones with -n K\n%s", usage);
		return WISP_EXIT_ERROR;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "wisp: %s: %s\n%s", argv[0],
			argc == optind ? "no snapshot file given" : "too many arguments", usage);
		return WISP_EXIT_ERROR;
	}
	char file[PATH_MAX];
	client_abs_path(argv[optind], file, sizeof(file));
	if (!strchr(argv[optind], '/')) /* a name in wispd's snapshot directory */
		snprintf(file, sizeof(file), "%s", argv[optind]);
	if (!client_init())
		return WISP_EXIT_ERROR;
	int code = 0;
	/* The VMM maps the snapshot's memory: the bytes are the memory restored. */
	struct progress pg;
	char what[160];
	snprintf(what, sizeof(what), "wisp: %s '%.120s'", argv[0], argv[optind]);
	progress_start(&pg, what, 0, quiet);
	for (uint64_t i = 1; i <= count; i++) {
		char nm[128];
		if (clone && name)
			snprintf(nm, sizeof(nm), "%.100s-%llu", name, (unsigned long long)i);
		if (restore_one(file, clone ? (name ? nm : NULL) : name, verify, &pg, clone, devs,
				ndevs, i)) {
			code = WISP_EXIT_ERROR;
			break; /* the same error would repeat for every clone */
		}
	}
	progress_end(&pg, code == 0);
	client_close();
	return code;
}

int cmd_restore(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cmd_clone(int argc, char **argv)
{
	return run(argc, argv, true);
}
