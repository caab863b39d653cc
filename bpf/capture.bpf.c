//go:build ignore

// TC programs that copy TCP packets of the targeted pods into a BPF ring
// buffer. The same code runs on the ingress and the egress hook; only the
// direction it records differs. Everything is filtered before any payload is
// copied, and every packet is counted exactly once as filtered, captured or
// lost (see enum counter).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char __license[] SEC("license") = "Dual MIT/GPL";

// Largest frame copied: a 64 KiB GSO/GRO super-packet (IP length ≤ 65535)
// plus link and network headers. Frames beyond it (BIG TCP) are cut here and
// counted as truncated.
#define MAX_SNAP (65536 + 128)

enum counter {
	COUNTER_SEEN,           // every packet the program ran on
	COUNTER_FILTERED,       // not TCP, or not selected by the filter
	COUNTER_CAPTURED,       // submitted to the ring buffer
	COUNTER_RINGBUF_FULL,   // selected, but no room in the ring buffer: lost
	COUNTER_LOAD_ERROR,     // selected, but bpf_skb_load_bytes failed: lost
	COUNTER_TRUNCATED,      // captured, but cut by the snap length
	COUNTER_CAPTURED_BYTES, // frame bytes copied into the ring buffer
	COUNTER_LOST_BYTES,     // wire bytes of lost packets
	COUNTER_MAX,
};

enum config_flag {
	// Capture every TCP packet on the attached interfaces.
	FLAG_CAPTURE_ALL = 1 << 0,
	// A packet is selected when every enabled dimension matches; with no
	// dimension enabled and no FLAG_CAPTURE_ALL nothing is captured.
	FLAG_FILTER_ADDR = 1 << 1,  // source or destination in addrs
	FLAG_FILTER_PORT = 1 << 2,  // source or destination port in ports
	FLAG_FILTER_IFACE = 1 << 3, // ifindex in ifaces
};

enum direction {
	DIR_INGRESS = 0,
	DIR_EGRESS = 1,
};

struct config {
	enum config_flag flags; // a bit set
	// Bytes of each frame to copy, 1..MAX_SNAP.
	__u32 snaplen;
	// Force a consumer wakeup once this many bytes wait in the ring buffer;
	// below it events are submitted without a wakeup and the reader polls.
	// 0 leaves the choice to the kernel (a wakeup whenever the reader has
	// caught up).
	__u32 wakeup_bytes;
	__u32 _pad;
};

// The record header; cap_len bytes of the frame follow it.
struct event {
	__u64 ts_ns;    // CLOCK_MONOTONIC (bpf_ktime_get_ns)
	__u32 wire_len; // skb->len: the whole frame, a GSO super-packet included
	__u32 cap_len;  // bytes copied
	__u32 ifindex;
	__u8 dir;       // enum direction, as seen by the interface
	__u8 _pad[3];
};

// Addresses are IPv6 or IPv4-mapped IPv6 (::ffff:a.b.c.d).
struct addr_key {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_key);
	__type(value, __u8);
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16); // host byte order
	__type(value, __u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, enum counter);
	__type(value, __u64);
} counters SEC(".maps");

// Sized by user space before loading.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} events SEC(".maps");

static __always_inline void count(enum counter c, __u64 n) {
	__u64 *v = bpf_map_lookup_elem(&counters, &c);
	if (v)
		*v += n; // per-CPU: no other writer
}

struct ports_hdr {
	__be16 source;
	__be16 dest;
};

// parse finds a TCP segment and fills its addresses and ports. It returns 0
// for anything else (ARP, UDP, ICMP, IP fragments after the first, IPv6 with
// extension headers before TCP).
static __always_inline int parse(struct __sk_buff *skb, struct addr_key *src, struct addr_key *dst,
				 __u16 *sport, __u16 *dport) {
	__u32 off = ETH_HLEN;
	__be16 proto;
	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)) < 0)
		return 0;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		if (bpf_skb_load_bytes(skb, 16, &proto, sizeof(proto)) < 0)
			return 0;
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return 0;
		if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
			return 0;
		if (ip.frag_off & bpf_htons(0x1fff)) // a later fragment has no TCP header
			return 0;
		__builtin_memset(src, 0, sizeof(*src));
		__builtin_memset(dst, 0, sizeof(*dst));
		src->addr[10] = 0xff;
		src->addr[11] = 0xff;
		dst->addr[10] = 0xff;
		dst->addr[11] = 0xff;
		__builtin_memcpy(&src->addr[12], &ip.saddr, 4);
		__builtin_memcpy(&dst->addr[12], &ip.daddr, 4);
		off += ip.ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return 0;
		if (ip6.nexthdr != IPPROTO_TCP)
			return 0;
		__builtin_memcpy(src->addr, &ip6.saddr, 16);
		__builtin_memcpy(dst->addr, &ip6.daddr, 16);
		off += sizeof(ip6);
	} else {
		return 0;
	}
	struct ports_hdr p;
	if (bpf_skb_load_bytes(skb, off, &p, sizeof(p)) < 0)
		return 0;
	*sport = bpf_ntohs(p.source);
	*dport = bpf_ntohs(p.dest);
	return 1;
}

static __always_inline int selected(struct __sk_buff *skb, const struct config *cfg) {
	struct addr_key src, dst;
	__u16 sport, dport;
	if (!parse(skb, &src, &dst, &sport, &dport))
		return 0;
	if (cfg->flags & FLAG_CAPTURE_ALL)
		return 1;
	if (!(cfg->flags & (FLAG_FILTER_ADDR | FLAG_FILTER_PORT | FLAG_FILTER_IFACE)))
		return 0;
	if (cfg->flags & FLAG_FILTER_IFACE) {
		__u32 idx = skb->ifindex;
		if (!bpf_map_lookup_elem(&ifaces, &idx))
			return 0;
	}
	if (cfg->flags & FLAG_FILTER_PORT) {
		if (!bpf_map_lookup_elem(&ports, &sport) && !bpf_map_lookup_elem(&ports, &dport))
			return 0;
	}
	if (cfg->flags & FLAG_FILTER_ADDR) {
		if (!bpf_map_lookup_elem(&addrs, &src) && !bpf_map_lookup_elem(&addrs, &dst))
			return 0;
	}
	return 1;
}

static __always_inline __u64 wakeup_flag(const struct config *cfg) {
	if (!cfg->wakeup_bytes)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg->wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

// emit copies the first n bytes of the frame into a record with room for
// size bytes. size is a compile-time constant at every call (the ring buffer
// needs a constant reservation); n is at most size.
static __always_inline void emit(struct __sk_buff *skb, const struct config *cfg, __u64 n, const __u64 size,
				 __u8 dir) {
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(struct event) + size, 0);
	if (!e) {
		count(COUNTER_RINGBUF_FULL, 1);
		count(COUNTER_LOST_BYTES, skb->len);
		return;
	}
	// Clamped in a 64-bit register: clang 14 drops the bound of a 32-bit
	// length and the verifier then rejects the copy as possibly zero-sized.
	if (n > size)
		n = size;
	if (n < 1)
		n = 1;
	if (bpf_skb_load_bytes(skb, 0, (void *)(e + 1), n) < 0) {
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		count(COUNTER_LOAD_ERROR, 1);
		count(COUNTER_LOST_BYTES, skb->len);
		return;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->wire_len = skb->len;
	e->cap_len = n;
	e->ifindex = skb->ifindex;
	e->dir = dir;
	e->_pad[0] = 0;
	e->_pad[1] = 0;
	e->_pad[2] = 0;
	bpf_ringbuf_submit(e, wakeup_flag(cfg));
	count(COUNTER_CAPTURED, 1);
	count(COUNTER_CAPTURED_BYTES, n);
	if (n < skb->len)
		count(COUNTER_TRUNCATED, 1);
}

static __always_inline int capture(struct __sk_buff *skb, __u8 dir) {
	count(COUNTER_SEEN, 1);
	__u32 zero = 0;
	const struct config *cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg || !selected(skb, cfg)) {
		count(COUNTER_FILTERED, 1);
		return TC_ACT_UNSPEC;
	}
	__u64 n = skb->len;
	__u64 snap = cfg->snaplen;
	if (n > snap)
		n = snap;
	// Records come in a few size classes so that a 66-byte ACK does not take
	// 64 KiB of the ring while a GSO super-packet still fits whole.
	if (n <= 128)
		emit(skb, cfg, n, 128, dir);
	else if (n <= 512)
		emit(skb, cfg, n, 512, dir);
	else if (n <= 1536)
		emit(skb, cfg, n, 1536, dir);
	else if (n <= 4096)
		emit(skb, cfg, n, 4096, dir);
	else if (n <= 16384)
		emit(skb, cfg, n, 16384, dir);
	else if (n <= 32768)
		emit(skb, cfg, n, 32768, dir);
	else
		emit(skb, cfg, n, MAX_SNAP, dir);
	// TC_ACT_UNSPEC is TCX_NEXT under TCX: the packet goes on untouched to
	// whatever runs after us.
	return TC_ACT_UNSPEC;
}

SEC("tc")
int capture_ingress(struct __sk_buff *skb) {
	return capture(skb, DIR_INGRESS);
}

SEC("tc")
int capture_egress(struct __sk_buff *skb) {
	return capture(skb, DIR_EGRESS);
}
