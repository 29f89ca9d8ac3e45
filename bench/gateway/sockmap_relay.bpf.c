// The kernel half of bench/gateway/sockmap_bench.c's sockmap relay: a
// stream-verdict program (no parser: it runs from the socket's data_ready on
// whatever arrived) that sends every byte received on one socket of a pair
// out of the other one, and counts them, so the relay process never wakes.
//
// `socks` holds the sockets by slot; `links` maps a socket's cookie to its
// peer's slot and the bytes redirected from it (what a gateway would need to
// know at a FREEZE).
//
// Built by bench/gateway/CMakeLists.txt (clang -target bpf).
#include <linux/bpf.h>
// bpf_helpers.h needs the types of linux/bpf.h first.
#include <bpf/bpf_helpers.h>

struct link {
  __u32 peer_slot;
  __u32 pad;
  __u64 bytes; // redirected from this socket to its peer
};

struct {
  __uint(type, BPF_MAP_TYPE_SOCKMAP);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} socks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u64);
  __type(value, struct link);
} links SEC(".maps");

SEC("sk_skb/stream_verdict")
int relay(struct __sk_buff* skb) {
  __u64 cookie = bpf_get_socket_cookie(skb);
  struct link* link = bpf_map_lookup_elem(&links, &cookie);
  if (!link) return SK_PASS; // not paired: the bytes stay in this socket for user space
  int verdict = bpf_sk_redirect_map(skb, &socks, link->peer_slot, 0);
  if (verdict == SK_PASS) __sync_fetch_and_add(&link->bytes, skb->len);
  return verdict;
}

char LICENSE[] SEC("license") = "GPL";
