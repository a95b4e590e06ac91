/* `wisp run` options that add virtio devices: --rng, --disk, --net,
 * --console, --vsock (docs/cli.md). Parsing checks the syntax; opening
 * happens before KVM is touched, so a bad path fails fast without /dev/kvm;
 * attaching needs the VM. */
#ifndef WISP_VIRTIO_ARGS_H
#define WISP_VIRTIO_ARGS_H

#include <stddef.h>

#include "devices/virtio/virtio.h"

enum virtio_arg_kind { VARG_RNG, VARG_DISK, VARG_NET, VARG_CONSOLE, VARG_VSOCK };

struct virtio_arg {
	enum virtio_arg_kind kind;
	char *value; /* copy of the option value; the opts below point into it */
	union {
		struct virtio_blk_opts blk;
		struct virtio_net_opts net;
		struct virtio_console_opts con;
		struct virtio_vsock_opts vsock;
	};
};

struct virtio_args {
	int n;
	struct virtio_arg a[VIRTIO_MAX_DEVICES];
	struct virtio_dev *dev[VIRTIO_MAX_DEVICES]; /* opened, not yet attached */
};

/* Parse one option (`flag` is "rng", "disk", "net", "console" or "vsock";
 * value NULL for --rng); on error writes one line into err, returns -1. */
int virtio_args_parse(struct virtio_args *va, const char *flag, const char *value, char *err,
		      size_t errlen);
/* Open every backend (files, TAPs, sockets); -1 with err set on failure. */
int virtio_args_open(struct virtio_args *va, char *err, size_t errlen);
/* Attach the opened devices to vm, in command-line order; the VM owns them
 * from then on. */
int virtio_args_attach(struct virtio_args *va, struct vm *vm, char *err, size_t errlen);
/* Free what parse and open allocated and was not attached. */
void virtio_args_free(struct virtio_args *va);

#endif
