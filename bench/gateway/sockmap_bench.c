// Can a TCP relay that forwards in the kernel (a BPF sockmap) add less than
// 10% to a request's round trip, where a user-space relay adds 200%?
// (issue 16; docs/performance.md, "Forwarding in the kernel: a BPF sockmap").
//
// One client, one request at a time (SIZE-byte request, SIZE-byte reply),
// N requests per round, to a server (it answers the request's bytes
// complemented; the client checks every reply) reached three ways, in
// rounds that alternate them:
//   direct   client -> server
//   user     client -> relay -> server: an epoll relay, one wait, one recv
//            and one send per direction (what `tern gateway` does)
//   sockmap  client -> relay -> server: the relay accepts, connects, puts
//            both sockets in a sockmap whose stream-verdict program
//            (sockmap_relay.bpf.c) sends what one receives out of the
//            other, and goes back to accept: the traffic never wakes it.
// Every process is forked from this one and everything is on loopback
// (127.0.0.1), or, with --netns, the client in one network namespace, the
// relays in a second and the server in a third, linked by veth pairs
// through the relays' namespace, which forwards (the bench's hosts, where
// the direct path crosses the gateway's namespace too).
//
//   tern_sockmap_bench [--requests N] [--rounds R] [--size SIZE] [--netns]
//                      [--only user|sockmap (and direct)]
//                      [--bpf OBJECT (default: sockmap_relay.bpf.o next to it)]
//
// Needs root for the sockmap (CAP_NET_ADMIN and CAP_BPF) and --netns.
// Per round and path it prints p50 and p99. The processes are named
// smb-client, smb-server, smb-user-relay and smb-sockmap, so that
// `perf record -e sched:sched_wakeup -a` over a run counts the wake-ups of
// each (docs/performance.md).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536

static void die(const char* what) {
  perror(what);
  exit(1);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int listen_on(const char* addr, int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (bind(fd, (struct sockaddr*)&sa, sizeof sa) < 0 || listen(fd, 16) < 0) die("bind/listen");
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr*)&sa, &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

static int connect_to(const char* addr, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int accept_one(int lfd) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) die("accept");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static int read_full(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, buf + got, n - got, 0);
    if (r <= 0) return -1;
    got += r;
  }
  return 0;
}

static void write_full(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w <= 0) die("send");
    buf += w;
    n -= w;
  }
}

// The server: per connection (a process each: the sockmap relay keeps its
// connection open after the client ended), reads SIZE bytes and answers
// them complemented, so that a path that sends the client its own request
// back fails the client's check.
static void serve(int lfd, size_t size) {
  static char buf[MAX_SIZE];
  signal(SIGCHLD, SIG_IGN);
  for (;;) {
    int fd = accept_one(lfd);
    if (fork() == 0) {
      while (read_full(fd, buf, size) == 0) {
        for (size_t i = 0; i < size; i++) buf[i] ^= 0xff; // not an echo of the path's own
        write_full(fd, buf, size);
      }
      _exit(0);
    }
    close(fd);
  }
}

// The user-space relay: epoll over both sockets, recv from one, send to the
// other, as `tern gateway` does in steady state.
static void relay_user(int client, int backend) {
  static char buf[MAX_SIZE];
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  ev.data.fd = client;
  epoll_ctl(ep, EPOLL_CTL_ADD, client, &ev);
  ev.data.fd = backend;
  epoll_ctl(ep, EPOLL_CTL_ADD, backend, &ev);
  write_full(client, "H", 1); // the client may start
  for (;;) {
    struct epoll_event got[2];
    int n = epoll_wait(ep, got, 2, -1);
    for (int i = 0; i < n; i++) {
      int from = got[i].data.fd, to = from == client ? backend : client;
      ssize_t r = recv(from, buf, sizeof buf, MSG_DONTWAIT);
      if (r == 0 || (r < 0 && errno != EAGAIN)) return;
      if (r > 0) write_full(to, buf, r);
    }
  }
}

struct link {
  uint32_t peer_slot;
  uint32_t pad;
  uint64_t bytes;
};

static uint64_t cookie_of(int fd) {
  uint64_t cookie;
  socklen_t len = sizeof cookie;
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0) die("SO_COOKIE");
  return cookie;
}

static void print_counts(int links, int fds[2]) {
  uint64_t bytes[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    uint64_t cookie = cookie_of(fds[i]);
    struct link link;
    if (bpf_map_lookup_elem(links, &cookie, &link) == 0) bytes[i] = link.bytes;
    bpf_map_delete_elem(links, &cookie);
  }
  fprintf(stderr, "sockmap relay: %llu bytes client->server, %llu server->client\n",
          (unsigned long long)bytes[0], (unsigned long long)bytes[1]);
}

// The kernel half: the verdict program attached to its sockmap.
struct bpf_relay {
  struct bpf_object* obj;
  int socks, links;
};

// Loads sockmap_relay.bpf.o and attaches its verdict program; exits with
// the reason if this kernel or user cannot.
static struct bpf_relay load_bpf(const char* object) {
  struct bpf_relay bpf = {.obj = bpf_object__open_file(object, NULL)};
  if (!bpf.obj || bpf_object__load(bpf.obj)) {
    fprintf(stderr, "sockmap_bench: cannot load %s (root? a kernel with BPF sockmap?)\n", object);
    exit(1);
  }
  int prog = bpf_program__fd(bpf_object__find_program_by_name(bpf.obj, "relay"));
  bpf.socks = bpf_object__find_map_fd_by_name(bpf.obj, "socks");
  bpf.links = bpf_object__find_map_fd_by_name(bpf.obj, "links");
  if (prog < 0 || bpf.socks < 0 || bpf.links < 0 ||
      bpf_prog_attach(prog, bpf.socks, BPF_SK_SKB_STREAM_VERDICT, 0))
    die("attaching the verdict program");
  return bpf;
}

// The sockmap relay: per connection, pairs the two sockets in the kernel and
// goes back to accept (the next connection means the client has ended the
// previous one). Nothing here reads the sockets: bytes never reach user
// space (and a blocking recv on a socket whose bytes a verdict program takes
// returns EAGAIN, not its end).
static void relay_sockmap(struct bpf_relay bpf, int lfd, const char* server, int sport) {
  int fds[2] = {-1, -1};
  for (uint32_t n = 0;; n = (n + 1) % 32) {
    int client = accept_one(lfd);
    if (fds[0] >= 0) {
      print_counts(bpf.links, fds);
      close(fds[0]);
      close(fds[1]);
    }
    fds[0] = client;
    fds[1] = connect_to(server, sport);
    // The links first: a socket the program finds no link for keeps its
    // bytes for user space.
    uint32_t slot[2] = {2 * n, 2 * n + 1};
    for (int i = 0; i < 2; i++) {
      uint64_t cookie = cookie_of(fds[i]);
      struct link link = {.peer_slot = slot[1 - i]};
      if (bpf_map_update_elem(bpf.links, &cookie, &link, BPF_ANY)) die("links");
    }
    for (int i = 0; i < 2; i++) {
      uint64_t fd = fds[i];
      if (bpf_map_update_elem(bpf.socks, &slot[i], &fd, BPF_ANY)) die("socks");
    }
    write_full(client, "H", 1); // the client may start: no byte came before the pairing
  }
}

static void relay(const char* mode, struct bpf_relay bpf, int lfd, const char* server, int sport) {
  if (strcmp(mode, "sockmap") == 0) relay_sockmap(bpf, lfd, server, sport);
  for (;;) {
    int client = accept_one(lfd);
    int backend = connect_to(server, sport);
    relay_user(client, backend);
    close(client);
    close(backend);
  }
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

// One round: N requests, one at a time; fills p50 and p99 (us).
static void run_client(const char* addr, int port, int hello, long n, size_t size, double* p50,
                       double* p99) {
  static char buf[MAX_SIZE], reply[MAX_SIZE];
  int fd = connect_to(addr, port);
  // A deadlock guard, not a time limit: a path that loses a byte would
  // otherwise leave the client waiting for its reply forever.
  struct timeval guard = {.tv_sec = 30};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
  if (hello && read_full(fd, buf, 1) < 0) die("hello");
  double* lat = malloc(n * sizeof *lat);
  for (long i = 0; i < n; i++) {
    memset(buf, (int)(i & 0x7f), size); // each request differs from the one before
    double t0 = now_us();
    write_full(fd, buf, size);
    if (read_full(fd, reply, size) < 0) die("no reply (30 s)");
    lat[i] = now_us() - t0;
    for (size_t k = 0; k < size; k++)
      if ((reply[k] ^ buf[k]) != (char)0xff) {
        fprintf(stderr, "sockmap_bench: wrong reply to request %ld on %s:%d\n", i, addr, port);
        exit(1);
      }
  }
  close(fd);
  qsort(lat, n, sizeof *lat, cmp_double);
  *p50 = lat[n / 2];
  *p99 = lat[n * 99 / 100];
  free(lat);
}

static double median(const double* v, int n) {
  double sorted[64];
  memcpy(sorted, v, n * sizeof *v);
  qsort(sorted, n, sizeof *sorted, cmp_double);
  return sorted[n / 2];
}

// --netns: three namespaces, c (client), g (relays, forwards) and s
// (server), named after this process so that parallel runs never collide.
// The server and relays, and the namespaces, go at exit, however the main
// process exits (the children's exits must not run it).
static char netns_tag[32];
static pid_t main_pid, children[3];

// The shell commands find the tag in $T.
static void cleanup(void) {
  if (getpid() != main_pid) return;
  for (int m = 0; m < 3; m++)
    if (children[m] > 0) kill(children[m], SIGKILL), waitpid(children[m], NULL, 0);
  if (netns_tag[0] && system("for n in c g s; do ip netns del $T-$n 2>/dev/null; done"))
    fprintf(stderr, "sockmap_bench: could not remove the namespaces %s-*\n", netns_tag);
}

// Ctrl-C or a kill: the same cleanup (a bench tool: exit() from the
// handler is good enough).
static void on_signal(int sig) {
  exit(128 + sig);
}

static int netns_create(void) {
  snprintf(netns_tag, sizeof netns_tag, "smb%d", (int)main_pid);
  setenv("T", netns_tag, 1);
  return system(
      "set -e; for n in c g s; do ip netns add $T-$n; ip -n $T-$n link set lo up; done;"
      "ip link add $T-cg netns $T-c type veth peer name $T-gc netns $T-g;"
      "ip link add $T-sg netns $T-s type veth peer name $T-gs netns $T-g;"
      "ip -n $T-c addr add 10.77.1.1/24 dev $T-cg; ip -n $T-g addr add 10.77.1.2/24 dev $T-gc;"
      "ip -n $T-s addr add 10.77.2.1/24 dev $T-sg; ip -n $T-g addr add 10.77.2.2/24 dev $T-gs;"
      "for l in c:cg g:gc s:sg g:gs; do ip -n $T-${l%:*} link set $T-${l#*:} up; done;"
      "ip -n $T-c route add default via 10.77.1.2; ip -n $T-s route add default via 10.77.2.2;"
      "ip netns exec $T-g sysctl -qw net.ipv4.ip_forward=1");
}

static void enter(int netns, const char* name) {
  if (!netns) return;
  char path[64];
  snprintf(path, sizeof path, "/var/run/netns/%s-%s", netns_tag, name);
  int fd = open(path, O_RDONLY);
  if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) die(path);
  close(fd);
}

// The BPF object next to this program (the build puts them together).
static void default_object(char* path, size_t size) {
  ssize_t n = readlink("/proc/self/exe", path, size - 32);
  if (n < 0) die("/proc/self/exe");
  path[n] = 0;
  char* slash = strrchr(path, '/');
  strcpy(slash ? slash + 1 : path, "sockmap_relay.bpf.o");
}

int main(int argc, char** argv) {
  char object[4096];
  default_object(object, sizeof object);
  long requests = 100000;
  int rounds = 3, netns = 0;
  int runs[3] = {1, 1, 1}; // direct (always: the reference), user, sockmap
  size_t size = 64;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
      requests = atol(argv[++i]);
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
      size = atol(argv[++i]);
    else if (strcmp(argv[i], "--bpf") == 0 && i + 1 < argc)
      snprintf(object, sizeof object, "%s", argv[++i]);
    else if (strcmp(argv[i], "--netns") == 0)
      netns = 1;
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && strcmp(argv[i + 1], "user") == 0)
      runs[2] = 0, i++;
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc && strcmp(argv[i + 1], "sockmap") == 0)
      runs[1] = 0, i++;
    else {
      fprintf(stderr,
              "usage: %s [--requests N] [--rounds R (1-64)] [--size BYTES] [--netns] "
              "[--only user|sockmap] [--bpf OBJECT]\n",
              argv[0]);
      return 2;
    }
  }
  if (size < 1 || size > MAX_SIZE || requests < 100 || rounds < 1 || rounds > 64) {
    fprintf(stderr, "sockmap_bench: out of range\n");
    return 2;
  }
  struct bpf_relay bpf = load_bpf(object);
  main_pid = getpid();
  atexit(cleanup);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  if (netns && netns_create() != 0) return 1;
  const char* server_addr = netns ? "10.77.2.1" : "127.0.0.1";
  const char* relay_addr = netns ? "10.77.1.2" : "127.0.0.1";
  const char* modes[] = {"direct", "user", "sockmap"};
  int sport, ports[3];
  pid_t* pids = children;
  enter(netns, "s");
  int slfd = listen_on(server_addr, &sport);
  if ((pids[0] = fork()) == 0) {
    prctl(PR_SET_NAME, "smb-server");
    serve(slfd, size);
  }
  close(slfd);
  ports[0] = sport;
  enter(netns, "g");
  for (int m = 1; m < 3; m++) {
    int lfd = listen_on(relay_addr, &ports[m]);
    if ((pids[m] = fork()) == 0) {
      prctl(PR_SET_NAME, m == 1 ? "smb-user-relay" : "smb-sockmap");
      relay(modes[m], bpf, lfd, server_addr, sport);
    }
    close(lfd);
  }
  enter(netns, "c");
  prctl(PR_SET_NAME, "smb-client");
  printf("%ld requests per round, one at a time, %zu-byte request and reply, %s\n", requests, size,
         netns ? "3 network namespaces (client, relay: forwards, server)" : "loopback");
  printf("round  path     p50 (added)           p99\n");
  double p50[3][64], p99[3][64];
  for (int r = 0; r < rounds; r++) {
    for (int m = 0; m < 3; m++) {
      if (!runs[m]) continue;
      double warm50, warm99;
      const char* addr = m == 0 ? server_addr : relay_addr;
      run_client(addr, ports[m], m != 0, 1000, size, &warm50, &warm99);
      run_client(addr, ports[m], m != 0, requests, size, &p50[m][r], &p99[m][r]);
      printf("%5d  %-7s %7.1fus (%+7.1f%%) %8.1fus\n", r + 1, modes[m], p50[m][r],
             100 * (p50[m][r] / p50[0][r] - 1), p99[m][r]);
      fflush(stdout);
    }
  }
  printf("median p50:");
  for (int m = 0; m < 3; m++)
    if (runs[m])
      printf(" %s %.1fus (%+.1f%%)", modes[m], median(p50[m], rounds),
             100 * (median(p50[m], rounds) / median(p50[0], rounds) - 1));
  printf("\n");
  return 0; // cleanup() at exit
}
