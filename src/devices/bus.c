/* The bus: a sorted array of address ranges, searched by binary search.
 * Devices register here; the vCPU loop dispatches every PIO/MMIO exit here
 * and never names a device. Ranges can change while vCPUs run (a PCI BAR
 * being moved), hence the read-write lock; it is uncontended on the fast path. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/devices.h"

int bus_init(struct bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
	pthread_rwlock_destroy(&bus->lock);
}

/* Index of the first range whose base is > addr. */
static int upper_bound(const struct bus *bus, uint64_t addr)
{
	int lo = 0, hi = bus->nr;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (bus->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler fn, void *opaque,
		 const char *name)
{
	if (len == 0 || base + len < base || !fn)
		return -EINVAL;
	int ret = 0;
	pthread_rwlock_wrlock(&bus->lock);
	int i = upper_bound(bus, base);
	/* The neighbour below must end before us, the one above start after us. */
	if (i > 0 && bus->ranges[i - 1].base + bus->ranges[i - 1].len > base)
		ret = -EEXIST;
	else if (i < bus->nr && bus->ranges[i].base < base + len)
		ret = -EEXIST;
	if (!ret && bus->nr == bus->cap) {
		int cap = bus->cap ? bus->cap * 2 : 8;
		struct bus_range *r = realloc(bus->ranges, (size_t)cap * sizeof(*r));
		if (!r)
			ret = -ENOMEM;
		else {
			bus->ranges = r;
			bus->cap = cap;
		}
	}
	if (!ret) {
		memmove(&bus->ranges[i + 1], &bus->ranges[i],
			(size_t)(bus->nr - i) * sizeof(bus->ranges[0]));
		bus->ranges[i] = (struct bus_range){base, len, fn, opaque, name};
		bus->nr++;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	int ret = -ENOENT;
	pthread_rwlock_wrlock(&bus->lock);
	int i = upper_bound(bus, base) - 1;
	if (i >= 0 && bus->ranges[i].base == base) {
		memmove(&bus->ranges[i], &bus->ranges[i + 1],
			(size_t)(bus->nr - i - 1) * sizeof(bus->ranges[0]));
		bus->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

bool bus_dispatch(struct bus *bus, struct vcpu *vcpu, uint64_t addr, uint8_t *data, uint32_t len,
		  bool is_write)
{
	pthread_rwlock_rdlock(&bus->lock);
	int i = upper_bound(bus, addr) - 1;
	const struct bus_range *r = i >= 0 ? &bus->ranges[i] : NULL;
	/* The whole access must fall inside the range; `addr - base` cannot wrap
	 * because base <= addr. */
	if (r && addr - r->base < r->len && len <= r->len - (addr - r->base)) {
		bus_handler fn = r->fn;
		void *opaque = r->opaque;
		uint64_t off = addr - r->base;
		pthread_rwlock_unlock(&bus->lock);
		fn(opaque, vcpu, off, data, len, is_write);
		return true;
	}
	pthread_rwlock_unlock(&bus->lock);
	__atomic_add_fetch(&bus->unhandled, 1, __ATOMIC_RELAXED);
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}
