/* `wisp daemon [OPTIONS]`: start wispd, the binary next to this one (it has
 * its own libraries: the HTTP server and JSON, which `wisp` itself does not
 * load). Without --foreground it detaches once its socket is ready. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cmd_daemon(int argc, char **argv)
{
	char self[PATH_MAX], wispd[PATH_MAX + 8];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "wisp: daemon: cannot find my own binary: %s\n", strerror(errno));
		return WISP_EXIT_ERROR;
	}
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(wispd, sizeof(wispd), "%s/wispd", self);
	argv[0] = "wispd";
	execv(wispd, argv);
	fprintf(stderr, "wisp: daemon: cannot run %s: %s\n", wispd, strerror(errno));
	(void)argc;
	return WISP_EXIT_ERROR;
}
