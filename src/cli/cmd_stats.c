/* `wisp stats [--json] [VM]`: a VM's exit counts by kind, memory, boot
 * timing and its devices' I/O; without a VM, the daemon's: VMs by state, creates (from the pool
 * or cold) and the pool per size class. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp stats [--json] [--socket PATH] [VM]\n";

static void print_vm(struct json_t *s)
{
	struct json_t *e = jget(s, "exits"), *m = jget(s, "memory"), *b = jget(s, "boot");
	printf("vm          %s (%s), %s\n", jstr(s, "name"), jstr(s, "id"), jstr(s, "state"));
	printf("exits       io %lld  mmio %lld  hypercall %lld  hlt %lld  intr %lld  shutdown "
	       "%lld  unhandled %lld  other %lld\n",
	       jint(e, "io"), jint(e, "mmio"), jint(e, "hypercall"), jint(e, "hlt"),
	       jint(e, "intr"), jint(e, "shutdown"), jint(e, "unhandled"), jint(e, "other"));
	printf("memory      guest %lld KiB, VMM rss %lld KiB, pss %lld KiB\n",
	       jint(m, "guest") >> 10, jint(m, "vmm_rss") >> 10, jint(m, "vmm_pss") >> 10);
	printf("created     from the %s", jstr(b, "from"));
	if (jhas(b, "request_to_first_hypercall_us"))
		printf(", request -> first hypercall %.0f us",
		       (double)jint(b, "first_hypercall_ns") / 1e3 -
			       (double)jint(b, "request_ns") / 1e3);
	printf("\n");
	struct json_t *devs = jget(s, "devices");
	for (size_t i = 0; i < jlen(devs); i++) {
		struct json_t *d = jat(devs, i);
		printf("device %-4lld %s: ops %lld, tx %lld bytes, rx %lld bytes, notifies %lld, "
		       "interrupts %lld, guest errors %lld\n",
		       jint(d, "slot"), jstr(d, "type"), jint(d, "ops"), jint(d, "tx_bytes"),
		       jint(d, "rx_bytes"), jint(d, "notifies"), jint(d, "interrupts"),
		       jint(d, "guest_errors"));
	}
}

static void print_daemon(struct json_t *s)
{
	struct json_t *st = jget(s, "states"), *cr = jget(s, "creates");
	printf("wispd       %s, pid %lld, up %lld s, runtime directory %s\n", jstr(s, "version"),
	       jint(s, "pid"), jint(s, "uptime_ms") / 1000, jstr(s, "runtime_dir"));
	printf("vms         %lld: running %lld, paused %lld, starting %lld, exited %lld, crashed "
	       "%lld\n",
	       jint(s, "vms"), jint(st, "running"), jint(st, "paused"), jint(st, "starting"),
	       jint(st, "exited"), jint(st, "crashed"));
	printf("creates     %lld: from the pool %lld, cold %lld; failed %lld; destroys %lld; "
	       "adopted %lld\n",
	       jint(cr, "total"), jint(cr, "from_pool"), jint(cr, "cold"), jint(cr, "failed"),
	       jint(s, "destroys"), jint(s, "adopted"));
	struct json_t *pool = jget(s, "pool");
	for (size_t i = 0; i < jlen(pool); i++) {
		struct json_t *c = jat(pool, i);
		char cls[48];
		if (!strcmp(jstr(c, "kind"), "linux"))
			snprintf(cls, sizeof(cls), "linux:%lldM:%lld", jint(c, "mem") >> 20,
				 jint(c, "cpus"));
		else
			snprintf(cls, sizeof(cls), "%4lldM", jint(c, "mem") >> 20);
		printf("pool %s ready %lld/%lld, starting %lld, hits %lld, refills %lld%s%s\n", cls,
		       jint(c, "ready"), jint(c, "target"), jint(c, "starting"), jint(c, "hits"),
		       jint(c, "refills"), *jstr(c, "last_error") ? "; last error: " : "",
		       jstr(c, "last_error"));
	}
}

int cmd_stats(int argc, char **argv)
{
	bool json = false;
	int code;
	if (client_options(argc, argv, usage, "json", 0, &json, &code))
		return code;
	if (argc - optind > 1) {
		fprintf(stderr, "wisp: stats: give at most one VM\n%s", usage);
		return WISP_EXIT_ERROR;
	}
	char path[128] = "/stats";
	if (optind < argc && client_vm_path(argv[optind], "stats", path, sizeof(path)))
		return WISP_EXIT_ERROR;
	struct api_reply r;
	if (api_call("GET", path, NULL, &r))
		return WISP_EXIT_ERROR;
	if (json)
		jprint(r.json);
	else if (optind < argc)
		print_vm(r.json);
	else
		print_daemon(r.json);
	api_reply_free(&r);
	client_close();
	return 0;
}
