/* `wisp list [--json]`: every VM wispd knows, oldest first: name, id, state,
 * VMM pid, guest memory, uptime. Exited and crashed VMs stay listed (with
 * why) until destroyed. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] = "usage: wisp list [--json] [--socket PATH]\n";

/* 93 s -> "1m33s". */
static void format_uptime(long long ms, char *buf, size_t len)
{
	long long s = ms / 1000;
	if (s < 60)
		snprintf(buf, len, "%lld.%llds", s, ms % 1000 / 100);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

/* 33554432 -> "32M". */
static void format_size(long long b, char *buf, size_t len)
{
	if (b % (1ll << 30) == 0)
		snprintf(buf, len, "%lldG", b >> 30);
	else if (b % (1ll << 20) == 0)
		snprintf(buf, len, "%lldM", b >> 20);
	else
		snprintf(buf, len, "%lldK", b >> 10);
}

int cmd_list(int argc, char **argv)
{
	bool json = false;
	int code;
	if (client_options(argc, argv, usage, "json", 0, &json, &code))
		return code;
	if (optind < argc) {
		fprintf(stderr, "wisp: list: unexpected argument '%s'\n%s", argv[optind], usage);
		return WISP_EXIT_ERROR;
	}
	struct api_reply r;
	if (api_call("GET", "/vms", NULL, &r))
		return WISP_EXIT_ERROR;
	if (json) {
		jprint(r.json);
	} else {
		printf("%-20s %-12s %-8s %-8s %-6s %-8s %s\n", "NAME", "ID", "STATE", "PID",
		       "MEMORY", "UPTIME", "");
		for (size_t i = 0; i < jlen(r.json); i++) {
			struct json_t *vm = jat(r.json, i);
			char up[32], mem[32], pid[16];
			format_uptime(jint(vm, "uptime_ms"), up, sizeof(up));
			format_size(jint(vm, "mem"), mem, sizeof(mem));
			snprintf(pid, sizeof(pid), "%lld", jint(vm, "pid"));
			printf("%-20s %-12s %-8s %-8s %-6s %-8s %s\n", jstr(vm, "name"),
			       jstr(vm, "id"), jstr(vm, "state"), jint(vm, "pid") ? pid : "-", mem,
			       up, jstr(vm, "reason"));
		}
	}
	api_reply_free(&r);
	client_close();
	return 0;
}
