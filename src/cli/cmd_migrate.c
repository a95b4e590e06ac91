/* `wisp migrate VM HOST:PORT`: live-migrate a daemon VM to a `wisp
 * receive` on another host, showing each round (pages sent, dirty rate);
 * `wisp receive --listen ADDRESS:PORT --mem SIZE`: on the target, a VM that
 * waits for it. Both authenticate the other side and encrypt the stream
 * (TLS 1.3: a pre-shared key, or certificates) unless both were told
 * --insecure-cleartext. If the migration fails at any point the VM keeps
 * running here and the reason is printed. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "snapshot/snapshot.h"
#include "vmm/config.h"
#include "vmm/vmm.h"

static const char migrate_usage[] =
	"usage: wisp migrate [--quiet] [--socket PATH] AUTH [--server-name NAME] VM HOST:PORT\n"
	"AUTH: --psk FILE [--psk-identity ID] | --ca FILE --cert FILE --key FILE |\n"
	"      --insecure-cleartext\n";
static const char receive_usage[] =
	"usage: wisp receive [--name NAME] [--socket PATH] --listen ADDRESS:PORT --mem SIZE\n"
	"       [--timeout DURATION] AUTH\n"
	"       [--kind linux|unikernel] [--cpus N] [--disk PATH[,ro][,id=ID]]\n"
	"       [--net tap=NAME] [--vsock PATH] [--console virtio[,sock=PATH]]\n"
	"       [--rng] [--rng-device]   (every device of the VM, in its order)\n"
	"AUTH: --psk FILE [--psk-identity ID] | --ca FILE --cert FILE --key FILE |\n"
	"      --insecure-cleartext\n";

/* The authentication options both verbs share (getopt_long entries). */
enum { OPT_PSK = 256, OPT_PSK_ID, OPT_CA, OPT_CERT, OPT_KEY, OPT_CLEARTEXT };
#define AUTH_OPTIONS                                                                               \
	{"psk", required_argument, NULL, OPT_PSK},                                                 \
		{"psk-identity", required_argument, NULL, OPT_PSK_ID},                             \
		{"ca", required_argument, NULL, OPT_CA},                                           \
		{"cert", required_argument, NULL, OPT_CERT},                                       \
		{"key", required_argument, NULL, OPT_KEY},                                         \
	{                                                                                          \
		"insecure-cleartext", no_argument, NULL, OPT_CLEARTEXT                             \
	}

struct auth {
	char psk[4096], ca[4096], cert[4096], key[4096];
	const char *identity;
	bool cleartext;
};

/* One authentication option; false if c is not one. */
static bool auth_option(struct auth *a, int c, const char *arg)
{
	switch (c) {
	case OPT_PSK:
		client_abs_path(arg, a->psk, sizeof(a->psk));
		return true;
	case OPT_PSK_ID:
		a->identity = arg;
		return true;
	case OPT_CA:
		client_abs_path(arg, a->ca, sizeof(a->ca));
		return true;
	case OPT_CERT:
		client_abs_path(arg, a->cert, sizeof(a->cert));
		return true;
	case OPT_KEY:
		client_abs_path(arg, a->key, sizeof(a->key));
		return true;
	case OPT_CLEARTEXT:
		a->cleartext = true;
		return true;
	}
	return false;
}

/* Check the authentication options (-1, said why, if they do not go together). */
static int auth_check(const struct auth *a, const char *verb, const char *usage)
{
	bool x509 = a->ca[0] || a->cert[0] || a->key[0];
	const char *bad = NULL;
	if (a->cleartext && (a->psk[0] || x509))
		bad = "--insecure-cleartext takes no key or certificate";
	else if (a->psk[0] && x509)
		bad = "give --psk or certificates, not both";
	else if (!a->cleartext && !a->psk[0] && !x509)
		bad = "the migration is authenticated: give --psk FILE, or --ca, --cert and --key "
		      "(or --insecure-cleartext on a network you trust)";
	else if (x509 && (!a->ca[0] || !a->cert[0] || !a->key[0]))
		bad = "certificates need all of --ca, --cert and --key";
	else if (a->identity && !a->psk[0])
		bad = "--psk-identity needs --psk";
	if (bad) {
		fprintf(stderr, "wisp: %s: %s\n%s", verb, bad, usage);
		return -1;
	}
	return 0;
}

/* Put the authentication options in the request. */
static void auth_put(const struct auth *a, struct json_t *body)
{
	bool x509 = a->ca[0] || a->cert[0] || a->key[0];
	if (a->cleartext)
		jset_str(body, "transport", "cleartext");
	if (a->psk[0])
		jset_str(body, "psk_file", a->psk);
	if (a->identity)
		jset_str(body, "psk_identity", a->identity);
	if (x509) {
		jset_str(body, "ca", a->ca);
		jset_str(body, "cert", a->cert);
		jset_str(body, "key", a->key);
	}
}

/* HOST:PORT with HOST resolved to a numeric address (the VMM does no name
 * lookups); -1 (printed) if it cannot be. */
static int resolve(const char *arg, char *out, size_t len, char *name, size_t namelen)
{
	const char *colon = strrchr(arg, ':');
	uint64_t port;
	if (!colon || colon == arg || opt_parse_uint(colon + 1, 1, 65535, &port)) {
		fprintf(stderr, "wisp: migrate: '%s': give the target as HOST:PORT\n%s", arg,
			migrate_usage);
		return -1;
	}
	char host[256];
	size_t hl = (size_t)(colon - arg);
	if (hl >= sizeof(host)) {
		fprintf(stderr, "wisp: migrate: host name too long\n");
		return -1;
	}
	memcpy(host, arg, hl);
	host[hl] = 0;
	char *h = host;
	if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	snprintf(name, namelen, "%s", h);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	int g = getaddrinfo(h, NULL, &hints, &ai);
	if (g) {
		fprintf(stderr, "wisp: migrate: cannot resolve host '%s': %s\n", h,
			gai_strerror(g));
		return -1;
	}
	char addr[INET6_ADDRSTRLEN];
	const void *a = ai->ai_family == AF_INET
				? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
				: (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
	inet_ntop(ai->ai_family, a, addr, sizeof(addr));
	snprintf(out, len, ai->ai_family == AF_INET6 ? "[%s]:%llu" : "%s:%llu", addr,
		 (unsigned long long)port);
	freeaddrinfo(ai);
	return 0;
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		AUTH_OPTIONS,
		{"server-name", required_argument, NULL, 'n'},
		{"quiet", no_argument, NULL, 'q'},
		CLIENT_OPTIONS,
		{0},
	};
	static struct auth auth;
	const char *server_name = NULL;
	bool quiet = false;
	int c, code;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
		if (auth_option(&auth, c, optarg))
			continue;
		switch (c) {
		case 'n':
			server_name = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'S':
			client_set_socket(optarg);
			break;
		case 'h':
			fputs(migrate_usage, stdout);
			return 0;
		default:
			return client_bad_option("migrate", argv, migrate_usage);
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "wisp: migrate: %s\n%s",
			argc - optind < 2 ? "give a VM and HOST:PORT" : "too many arguments",
			migrate_usage);
		return WISP_EXIT_ERROR;
	}
	const char *vm = argv[optind];
	char to[300], path[128], mpath[128], name[256];
	if (auth_check(&auth, "migrate", migrate_usage) ||
	    resolve(argv[optind + 1], to, sizeof(to), name, sizeof(name)) ||
	    client_vm_path(vm, "migrate", path, sizeof(path)) ||
	    client_vm_path(vm, "migration", mpath, sizeof(mpath)))
		return WISP_EXIT_ERROR;
	if (!client_init())
		return WISP_EXIT_ERROR;
	struct api_reply r;
	struct progress pg;
	char what[160];
	snprintf(what, sizeof(what), "wisp: migrate %.60s", vm);
	progress_start(&pg, what, 0, quiet);
	char vpath[128];
	if (!client_vm_path(vm, NULL, vpath, sizeof(vpath)) &&
	    !api_call_quiet("GET", vpath, &r)) { /* the first round sends its memory */
		progress_set_total(&pg, (uint64_t)jint(r.json, "mem"));
		api_reply_free(&r);
	}
	struct json_t *body = jnew_object();
	jset_str(body, "to", to);
	auth_put(&auth, body);
	if (!auth.cleartext && !auth.psk[0])
		jset_str(body, "server_name", server_name ? server_name : name);
	if (api_call("POST", path, body, &r))
		return WISP_EXIT_ERROR;
	api_reply_free(&r);
	/* Follow the rounds until it ends; each new round is one line. */
	long long shown = 0;
	code = WISP_EXIT_ERROR;
	for (;;) {
		if (api_call("GET", mpath, NULL, &r))
			break;
		const char *st = jstr(r.json, "state");
		long long round = jint(r.json, "rounds");
		bool end = strcmp(st, "running") != 0;
		progress_update(&pg, (uint64_t)jnum(r.json, "bytes"));
		if (round > shown && !end) {
			progress_clear(&pg);
			printf("round %lld: %.1f MB sent, dirty rate %.1f MB/s\n", round,
			       jnum(r.json, "bytes") / 1e6, jnum(r.json, "dirty_rate") / 1e6);
			fflush(stdout);
			shown = round;
		}
		if (end)
			progress_end(&pg, !strcmp(st, "done"));
		if (!strcmp(st, "done")) {
			printf("migrated %s to %s: %lld rounds, %.1f MB, total %.2f ms, downtime "
			       "%.2f ms\n",
			       vm, argv[optind + 1], round, jnum(r.json, "bytes") / 1e6,
			       jnum(r.json, "total_ms"), jnum(r.json, "downtime_ms"));
			code = 0;
		} else if (end) {
			fprintf(stderr,
				"wisp: migration of '%s' to %s failed: %s (the VM still runs "
				"here)\n",
				vm, argv[optind + 1], jstr(r.json, "error"));
		}
		api_reply_free(&r);
		if (end)
			break;
		struct timespec ts = {0, 5 * 1000000};
		nanosleep(&ts, NULL);
	}
	client_close();
	return code;
}

int cmd_receive(int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"name", required_argument, NULL, 'N'},
		{"kind", required_argument, NULL, 'K'},
		{"cpus", required_argument, NULL, 'c'},
		{"mem", required_argument, NULL, 'm'},
		{"timeout", required_argument, NULL, 't'},
		{"disk", required_argument, NULL, 'D'},
		{"net", required_argument, NULL, 'T'},
		{"vsock", required_argument, NULL, 'V'},
		{"console", required_argument, NULL, 'C'},
		{"rng", no_argument, NULL, 'G'},
		{"rng-device", optional_argument, NULL, 'E'},
		AUTH_OPTIONS,
		CLIENT_OPTIONS,
		{0},
	};
	static struct auth auth;
	const char *name = NULL, *kind = NULL, *listen_at = NULL, *mem = NULL;
	uint64_t timeout_ms = 0, size, cpus = 0;
	/* The VM's devices, their host side here: the source's configuration
	 * gives the guest's side (docs/migration.md). */
	struct vm_config devs;
	char err[256];
	vm_config_init(&devs);
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+l:m:h", opts, NULL)) != -1) {
		if (auth_option(&auth, c, optarg))
			continue;
		switch (c) {
		case 'l':
			listen_at = optarg;
			break;
		case 'm':
			mem = optarg;
			if (opt_parse_size(optarg, &size)) {
				fprintf(stderr, "wisp: receive: --mem '%s': not a size\n%s", optarg,
					receive_usage);
				vm_config_free(&devs);
				return WISP_EXIT_ERROR;
			}
			break;
		case 't':
			if (opt_parse_duration_ms(optarg, &timeout_ms) || timeout_ms < 1000 ||
			    timeout_ms > 86400000) {
				fprintf(stderr,
					"wisp: receive: --timeout '%s': give 1s to 24h (e.g. "
					"5m)\n%s",
					optarg, receive_usage);
				vm_config_free(&devs);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'N':
			name = optarg;
			break;
		case 'K':
			kind = optarg;
			break;
		case 'c':
			if (opt_parse_uint(optarg, 1, WISP_MAX_VCPUS, &cpus)) {
				fprintf(stderr,
					"wisp: receive: --cpus '%s': must be a number from 1 to "
					"%d\n%s",
					optarg, WISP_MAX_VCPUS, receive_usage);
				vm_config_free(&devs);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'D':
		case 'T':
		case 'V':
		case 'C':
		case 'G':
		case 'E':
			if (vm_config_add_flag(&devs,
					       c == 'D'	  ? "disk"
					       : c == 'T' ? "net"
					       : c == 'V' ? "vsock"
					       : c == 'C' ? "console"
					       : c == 'G' ? "rng"
							  : "rng-device",
					       optarg, err, sizeof(err))) {
				fprintf(stderr, "wisp: receive: %s\n%s", err, receive_usage);
				vm_config_free(&devs);
				return WISP_EXIT_ERROR;
			}
			break;
		case 'S':
			client_set_socket(optarg);
			break;
		case 'h':
			vm_config_free(&devs);
			fputs(receive_usage, stdout);
			return 0;
		default:
			vm_config_free(&devs);
			return client_bad_option("receive", argv, receive_usage);
		}
	}
	const char *missing = !listen_at
				      ? "give the address to listen on with --listen ADDRESS:PORT"
			      : !mem	       ? "give the VM's memory size with --mem SIZE"
			      : optind != argc ? "too many arguments"
					       : NULL;
	if (missing) {
		fprintf(stderr, "wisp: receive: %s\n%s", missing, receive_usage);
		vm_config_free(&devs);
		return WISP_EXIT_ERROR;
	}
	char why[200];
	struct sockaddr_storage ss;
	unsigned sl;
	if (mig_parse_addr(listen_at, &ss, &sl, why, sizeof(why))) {
		fprintf(stderr, "wisp: receive: --listen %s\n%s", why, receive_usage);
		vm_config_free(&devs);
		return WISP_EXIT_ERROR;
	}
	if (auth_check(&auth, "receive", receive_usage)) {
		vm_config_free(&devs);
		return WISP_EXIT_ERROR;
	}
	struct json_t *jdevs = NULL;
	if (devs.ndev &&
	    (vm_config_abs_paths(&devs) || !(jdevs = vm_config_host_sides_to_jobj(&devs, true)))) {
		fprintf(stderr, "wisp: receive: cannot make the device paths absolute\n");
		vm_config_free(&devs);
		return WISP_EXIT_ERROR;
	}
	vm_config_free(&devs);
	if (!client_init()) {
		jfree(jdevs);
		return WISP_EXIT_ERROR;
	}
	struct json_t *body = jnew_object();
	jset_str(body, "listen", listen_at);
	jset_str(body, "mem", mem);
	if (timeout_ms)
		jset_int(body, "timeout", (long long)((timeout_ms + 999) / 1000));
	if (kind)
		jset_str(body, "kind", kind);
	if (cpus)
		jset_int(body, "cpus", (long long)cpus);
	if (jdevs)
		jset(body, "devices", jdevs);
	if (name)
		jset_str(body, "name", name);
	auth_put(&auth, body);
	struct api_reply r;
	if (api_call("POST", "/vms/receive", body, &r))
		return WISP_EXIT_ERROR;
	printf("%s\n", jstr(r.json, "id"));
	api_reply_free(&r);
	client_close();
	return 0;
}
