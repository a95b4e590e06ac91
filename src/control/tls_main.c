/* wisp-tls: the migration transport of one receive or one migration,
 * started by wispd (src/snapshot/transport.c, docs/migration.md). Dynamic,
 * unlike wisp-vmm: it links GnuTLS, and it lives only while a migration
 * does. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snapshot.h"

static const char usage[] =
	"usage: wisp-tls --fd FD (--listen ADDR:PORT | --connect ADDR:PORT) [--deadline-ms MS]\n"
	"       (--psk FILE [--psk-identity ID] | --ca FILE --cert FILE --key FILE\n"
	"        [--server-name NAME] | --cleartext)\n"
	"(started by wispd; not meant to be run by hand)\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"fd", required_argument, NULL, 'f'},
		{"listen", required_argument, NULL, 'l'},
		{"connect", required_argument, NULL, 'c'},
		{"deadline-ms", required_argument, NULL, 'd'},
		{"psk", required_argument, NULL, 'p'},
		{"psk-identity", required_argument, NULL, 'i'},
		{"ca", required_argument, NULL, 'A'},
		{"cert", required_argument, NULL, 'C'},
		{"key", required_argument, NULL, 'K'},
		{"server-name", required_argument, NULL, 'n'},
		{"cleartext", no_argument, NULL, 'x'},
		{0},
	};
	struct mig_tls_opts o = {.deadline_ms = 20000};
	const char *listen_at = NULL, *connect_to = NULL;
	uint64_t fd = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'f':
			bad = opt_parse_uint(optarg, 0, 1 << 20, &fd) != 0;
			break;
		case 'l':
			listen_at = optarg;
			break;
		case 'c':
			connect_to = optarg;
			break;
		case 'd':
			bad = opt_parse_uint(optarg, 1, 86400000, &o.deadline_ms) != 0;
			break;
		case 'p':
			o.psk_file = optarg;
			break;
		case 'i':
			o.psk_identity = optarg;
			break;
		case 'A':
			o.ca = optarg;
			break;
		case 'C':
			o.cert = optarg;
			break;
		case 'K':
			o.key = optarg;
			break;
		case 'n':
			o.server_name = optarg;
			break;
		case 'x':
			o.cleartext = true;
			break;
		default:
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "wisp-tls: bad argument '%s'\n%s", argv[optind - 1], usage);
			return 2;
		}
	}
	if (!fd || !listen_at == !connect_to || optind != argc ||
	    (!o.cleartext && !o.psk_file && !(o.ca && o.cert && o.key))) {
		fprintf(stderr, "wisp-tls: missing arguments\n%s", usage);
		return 2;
	}
	char host[128];
	if (!o.server_name && connect_to) { /* the address itself */
		const char *colon = strrchr(connect_to, ':'), *h = connect_to;
		size_t hl = colon ? (size_t)(colon - connect_to) : strlen(connect_to);
		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		snprintf(host, sizeof(host), "%.*s", (int)hl, h);
		o.server_name = host;
	}
	signal(SIGPIPE, SIG_IGN);
	return listen_at ? mig_transport_listen((int)fd, listen_at, &o)
			 : mig_transport_connect((int)fd, connect_to, &o);
}
