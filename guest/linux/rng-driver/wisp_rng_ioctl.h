/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The user-space interface of /dev/wisp-rng, shared by the wisp_rng driver
 * and the rng app. docs/rng-device.md describes the device behind it. */
#ifndef WISP_RNG_IOCTL_H
#define WISP_RNG_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define WISP_RNG_DEVNAME "wisp-rng" /* /dev/wisp-rng */

/* Seed the generator: the argument points to a __u32 seed. The same as a
 * write() of those 4 bytes. (0xB2 is unassigned in ioctl-number.rst.) */
#define WISP_RNG_IOC_SEED _IOW(0xB2, 0x01, __u32)

#endif
