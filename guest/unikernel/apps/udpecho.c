/* udpecho: a tiny IPv4 host on virtio-net. It answers ARP for its address,
 * ICMP echo (ping), and sends every UDP datagram back to where it came from.
 * Usage: udpecho [ip=A.B.C.D] [count=N]  (default 10.0.2.15; stops after N
 * echoed datagrams, never when N is 0). */
#include "wrt_virtio.h"

static uint8_t my_ip[4] = {10, 0, 2, 15};
static struct wrt_net net;
static uint8_t frame[WRT_NET_MTU_FRAME];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Internet checksum over n bytes, starting from sum. */
static uint16_t csum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += get16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int parse_ip(const char *s, uint8_t ip[4])
{
	for (int i = 0; i < 4; i++) {
		int v = 0, digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 3) {
			v = v * 10 + (*s++ - '0');
			digits++;
		}
		if (!digits || v > 255 || *s != (i < 3 ? '.' : 0))
			return -1;
		ip[i] = (uint8_t)v;
		s++;
	}
	return 0;
}

/* Turn the frame around: Ethernet addresses swapped, we are the source. */
static void reply_eth(uint8_t *f)
{
	memcpy(f, f + 6, 6);
	memcpy(f + 6, net.mac, 6);
}

static void arp(uint8_t *f, long len)
{
	uint8_t *a = f + 14;
	if (len < 42 || get16(a) != 1 || get16(a + 2) != 0x0800 || get16(a + 6) != 1 ||
	    memcmp(a + 24, my_ip, 4))
		return;
	put16(a + 6, 2);	   /* reply */
	memcpy(a + 18, a + 8, 10); /* target = the asker (MAC and IP) */
	memcpy(a + 8, net.mac, 6);
	memcpy(a + 14, my_ip, 4);
	reply_eth(f);
	wrt_net_send(&net, f, 42);
}

/* Returns 1 if a UDP datagram was echoed. */
static int ipv4(uint8_t *f, long len)
{
	uint8_t *ip = f + 14;
	if (len < 34 || ip[0] >> 4 != 4 || memcmp(ip + 16, my_ip, 4))
		return 0;
	size_t ihl = (size_t)(ip[0] & 15) * 4, tot = get16(ip + 2);
	if (ihl < 20 || tot < ihl || 14 + tot > (size_t)len)
		return 0;
	uint8_t *l4 = ip + ihl;
	size_t l4len = tot - ihl;
	int udp = 0;
	if (ip[9] == 1 && l4len >= 8 && l4[0] == 8) { /* ICMP echo request */
		l4[0] = 0;
		put16(l4 + 2, 0);
		put16(l4 + 2, csum(0, l4, l4len));
	} else if (ip[9] == 17 && l4len >= 8 && get16(l4 + 4) <= l4len) {
		size_t ulen = get16(l4 + 4);
		rt_printf("udpecho: %u bytes from %u.%u.%u.%u port %u\n", (unsigned)(ulen - 8),
			  ip[12], ip[13], ip[14], ip[15], get16(l4));
		uint8_t port[2];
		memcpy(port, l4, 2); /* swap ports */
		memcpy(l4, l4 + 2, 2);
		memcpy(l4 + 2, port, 2);
		udp = 1;
	} else {
		return 0;
	}
	memcpy(ip + 16, ip + 12, 4); /* swap addresses */
	memcpy(ip + 12, my_ip, 4);
	if (udp) { /* checksum with the pseudo-header */
		size_t ulen = get16(l4 + 4);
		uint32_t pseudo = get16(ip + 12) + get16(ip + 14) + get16(ip + 16) +
				  get16(ip + 18) + 17 + (uint32_t)ulen;
		put16(l4 + 6, 0);
		uint16_t c = csum(pseudo, l4, ulen);
		put16(l4 + 6, c ? c : 0xffff);
	}
	ip[8] = 64; /* TTL */
	put16(ip + 10, 0);
	put16(ip + 10, csum(0, ip, ihl));
	reply_eth(f);
	wrt_net_send(&net, f, 14 + tot);
	return udp;
}

int main(int argc, char **argv)
{
	long long count = 0;
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "ip=", 3) && !parse_ip(argv[i] + 3, my_ip))
			continue;
		if (!strncmp(argv[i], "count=", 6) && (count = rt_atoll(argv[i] + 6)) >= 0)
			continue;
		rt_puts("usage: udpecho [ip=A.B.C.D] [count=N]");
		return 2;
	}
	if (wrt_net_open(&net, 0)) {
		rt_puts("udpecho: no virtio-net device (run with --net tap=NAME)");
		return 1;
	}
	rt_printf("udpecho: listening on %u.%u.%u.%u, mac %02x:%02x:%02x:%02x:%02x:%02x\n",
		  my_ip[0], my_ip[1], my_ip[2], my_ip[3], net.mac[0], net.mac[1], net.mac[2],
		  net.mac[3], net.mac[4], net.mac[5]);
	for (long long echoed = 0; !count || echoed < count;) {
		long len = wrt_net_recv(&net, frame, sizeof(frame), UINT64_MAX);
		if (len < 14)
			continue;
		uint16_t type = get16(frame + 12);
		if (type == 0x0806)
			arp(frame, len);
		else if (type == 0x0800)
			echoed += ipv4(frame, len);
	}
	rt_printf("udpecho: done\n");
	return 0;
}
