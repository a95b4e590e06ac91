// SPDX-License-Identifier: GPL-2.0
/*
 * wisp_rng: driver for the RNG device of Wisp's virtualisation course, a PCI
 * function (1234:5701) whose BAR0 holds two 32-bit registers: RNG at 0x0
 * (each read returns a new number) and SEED at 0x4 (a write seeds it).
 *
 * It offers the numbers twice:
 *  - /dev/wisp-rng, a misc character device: read() returns whole 32-bit
 *    words, write() of exactly 4 bytes or WISP_RNG_IOC_SEED seeds;
 *  - the hwrng framework (so /dev/hwrng works), with quality 0: the
 *    generator is deterministic and whoever runs the VMM can seed or predict
 *    it, so the kernel must never credit it as entropy.
 *
 * The device is not trusted: BAR0 must be a memory BAR large enough for the
 * registers, every loop is bounded, a device that answers all ones (what a
 * failed or removed PCI device returns) gives -EIO instead of "random"
 * numbers, and an open file outlives the device safely (-ENODEV after
 * removal).
 */
#include <linux/fs.h>
#include <linux/hw_random.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "wisp_rng_ioctl.h"

#define WISP_RNG_VENDOR	  0x1234
#define WISP_RNG_DEVICE	  0x5701
#define WISP_RNG_REG_RNG  0x0
#define WISP_RNG_REG_SEED 0x4
#define WISP_RNG_REGS_LEN 0x8 /* the registers we use; the BAR is 4 KiB */

#define CHUNK_WORDS   64	 /* words per copy_to_user */
#define MAX_READ      (64 << 10) /* bytes per read() call; callers loop */
#define ALL_ONES_FAIL 2		 /* this many all-ones words in a row: broken */

struct wisp_rng {
	struct pci_dev *pdev;
	void __iomem *regs; /* NULL once the device is gone */
	struct mutex lock;  /* guards regs; keeps a seed and reads in order */
	struct kref ref;    /* probe's reference + one per open file */
	struct miscdevice misc;
	struct hwrng hwrng;
	unsigned int all_ones; /* consecutive 0xffffffff words seen */
};

/* One device at a time: the misc name /dev/wisp-rng is fixed. */
static atomic_t wisp_rng_bound = ATOMIC_INIT(0);

static void wisp_rng_free(struct kref *ref)
{
	kfree(container_of(ref, struct wisp_rng, ref));
}

/* Read n words into buf; called with the lock held. A run of all-ones words
 * means a device that stopped answering, not randomness. */
static int wisp_rng_fill(struct wisp_rng *r, u32 *buf, unsigned int n)
{
	unsigned int i;

	if (!r->regs)
		return -ENODEV;
	for (i = 0; i < n; i++) {
		buf[i] = ioread32(r->regs + WISP_RNG_REG_RNG);
		r->all_ones = buf[i] == 0xffffffff ? r->all_ones + 1 : 0;
		if (r->all_ones >= ALL_ONES_FAIL) {
			dev_err_ratelimited(&r->pdev->dev,
					    "device reads all ones: failed or removed\n");
			return -EIO;
		}
	}
	return 0;
}

static int wisp_rng_seed(struct wisp_rng *r, u32 seed)
{
	int ret = 0;

	if (mutex_lock_interruptible(&r->lock))
		return -ERESTARTSYS;
	if (r->regs)
		iowrite32(seed, r->regs + WISP_RNG_REG_SEED);
	else
		ret = -ENODEV;
	mutex_unlock(&r->lock);
	return ret;
}

/* --- /dev/wisp-rng ------------------------------------------------------ */

static int wisp_rng_open(struct inode *inode, struct file *file)
{
	/* misc_open() holds the misc lock, so remove() cannot have passed
	 * misc_deregister() and dropped its reference yet. */
	struct wisp_rng *r = container_of(file->private_data, struct wisp_rng, misc);

	kref_get(&r->ref);
	file->private_data = r;
	return stream_open(inode, file);
}

static int wisp_rng_release(struct inode *inode, struct file *file)
{
	struct wisp_rng *r = file->private_data;

	kref_put(&r->ref, wisp_rng_free);
	return 0;
}

static ssize_t wisp_rng_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct wisp_rng *r = file->private_data;
	u32 words[CHUNK_WORDS];
	size_t done = 0;
	int ret = 0;

	if (count < sizeof(u32))
		return -EINVAL; /* whole words only */
	count = min_t(size_t, count, MAX_READ) & ~(sizeof(u32) - 1);
	while (done < count) {
		unsigned int n = min_t(size_t, (count - done) / sizeof(u32), CHUNK_WORDS);

		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		if (mutex_lock_interruptible(&r->lock)) {
			ret = -ERESTARTSYS;
			break;
		}
		ret = wisp_rng_fill(r, words, n);
		mutex_unlock(&r->lock);
		if (ret)
			break;
		if (copy_to_user(ubuf + done, words, n * sizeof(u32))) {
			ret = -EFAULT;
			break;
		}
		done += n * sizeof(u32);
		cond_resched();
	}
	memzero_explicit(words, sizeof(words));
	return done ? done : ret;
}

static ssize_t wisp_rng_write(struct file *file, const char __user *ubuf, size_t count,
			      loff_t *ppos)
{
	u32 seed;
	int ret;

	if (count != sizeof(seed))
		return -EINVAL; /* exactly one 32-bit seed */
	if (copy_from_user(&seed, ubuf, sizeof(seed)))
		return -EFAULT;
	ret = wisp_rng_seed(file->private_data, seed);
	return ret ? ret : sizeof(seed);
}

static long wisp_rng_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	u32 seed;

	if (cmd != WISP_RNG_IOC_SEED)
		return -ENOTTY;
	if (copy_from_user(&seed, (void __user *)arg, sizeof(seed)))
		return -EFAULT;
	return wisp_rng_seed(file->private_data, seed);
}

static const struct file_operations wisp_rng_fops = {
	.owner = THIS_MODULE,
	.open = wisp_rng_open,
	.release = wisp_rng_release,
	.read = wisp_rng_read,
	.write = wisp_rng_write,
	.unlocked_ioctl = wisp_rng_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = no_llseek,
};

/* --- hwrng ---------------------------------------------------------------- */

static int wisp_rng_hwrng_read(struct hwrng *h, void *data, size_t max, bool wait)
{
	struct wisp_rng *r = container_of(h, struct wisp_rng, hwrng);
	u32 words[CHUNK_WORDS];
	unsigned int n = min_t(size_t, DIV_ROUND_UP(max, sizeof(u32)), CHUNK_WORDS);
	int ret;

	if (!max)
		return 0;
	/* The hwrng core does not take signals into account here; a plain
	 * lock is fine because every holder finishes in bounded time. */
	mutex_lock(&r->lock);
	ret = wisp_rng_fill(r, words, n);
	mutex_unlock(&r->lock);
	if (ret)
		return ret;
	max = min_t(size_t, max, n * sizeof(u32));
	memcpy(data, words, max);
	memzero_explicit(words, sizeof(words));
	return max;
}

/* --- PCI ------------------------------------------------------------------ */

static int wisp_rng_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct wisp_rng *r;
	resource_size_t len = pci_resource_len(pdev, 0);
	int ret;

	if (!(pci_resource_flags(pdev, 0) & IORESOURCE_MEM) || len < WISP_RNG_REGS_LEN) {
		dev_err(&pdev->dev,
			"BAR0 is not a memory BAR of at least %d bytes (flags %#lx, %pa bytes)\n",
			WISP_RNG_REGS_LEN, pci_resource_flags(pdev, 0), &len);
		return -ENODEV;
	}
	if (atomic_cmpxchg(&wisp_rng_bound, 0, 1)) {
		dev_warn(&pdev->dev,
			 "another wisp-rng device is already bound; ignoring this one\n");
		return -EBUSY;
	}
	ret = pcim_enable_device(pdev);
	if (ret)
		goto unbind;
	ret = pcim_iomap_regions(pdev, BIT(0), KBUILD_MODNAME);
	if (ret)
		goto unbind;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r) {
		ret = -ENOMEM;
		goto unbind;
	}
	r->pdev = pdev;
	r->regs = pcim_iomap_table(pdev)[0];
	mutex_init(&r->lock);
	kref_init(&r->ref);
	/* A device that only answers all ones is not there at all. */
	{
		u32 probe[ALL_ONES_FAIL];

		mutex_lock(&r->lock);
		ret = wisp_rng_fill(r, probe, ALL_ONES_FAIL);
		mutex_unlock(&r->lock);
		if (ret)
			goto free;
	}
	r->hwrng.name = WISP_RNG_DEVNAME;
	r->hwrng.read = wisp_rng_hwrng_read;
	r->hwrng.quality = 0; /* predictable by design: credit no entropy */
	ret = hwrng_register(&r->hwrng);
	if (ret)
		goto free;
	r->misc.minor = MISC_DYNAMIC_MINOR;
	r->misc.name = WISP_RNG_DEVNAME;
	r->misc.fops = &wisp_rng_fops;
	r->misc.mode = 0644; /* anyone may read; only root may seed */
	ret = misc_register(&r->misc);
	if (ret)
		goto unregister_hwrng;
	pci_set_drvdata(pdev, r);
	dev_info(&pdev->dev, "wisp-rng: revision %u, BAR0 %pR; /dev/%s and hwrng ready\n",
		 pdev->revision, &pdev->resource[0], WISP_RNG_DEVNAME);
	return 0;

unregister_hwrng:
	hwrng_unregister(&r->hwrng);
free:
	kref_put(&r->ref, wisp_rng_free);
unbind:
	atomic_set(&wisp_rng_bound, 0);
	return ret;
}

static void wisp_rng_remove(struct pci_dev *pdev)
{
	struct wisp_rng *r = pci_get_drvdata(pdev);

	/* No new opens, no new hwrng reads (hwrng_unregister waits for the
	 * ones in flight); files still open then see -ENODEV. The mapping
	 * itself is released by devres after we return. */
	misc_deregister(&r->misc);
	hwrng_unregister(&r->hwrng);
	mutex_lock(&r->lock);
	r->regs = NULL;
	mutex_unlock(&r->lock);
	kref_put(&r->ref, wisp_rng_free);
	atomic_set(&wisp_rng_bound, 0);
	dev_info(&pdev->dev, "wisp-rng: removed\n");
}

static const struct pci_device_id wisp_rng_ids[] = {{PCI_DEVICE(WISP_RNG_VENDOR, WISP_RNG_DEVICE)},
						    {}};
MODULE_DEVICE_TABLE(pci, wisp_rng_ids);

static struct pci_driver wisp_rng_driver = {
	.name = KBUILD_MODNAME,
	.id_table = wisp_rng_ids,
	.probe = wisp_rng_probe,
	.remove = wisp_rng_remove,
};
module_pci_driver(wisp_rng_driver);

MODULE_DESCRIPTION("Wisp course RNG device (PCI 1234:5701): /dev/wisp-rng and hwrng");
MODULE_LICENSE("GPL");
