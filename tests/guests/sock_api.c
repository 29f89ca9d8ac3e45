// The socket extension's API, call by call: option round trips, addresses,
// name resolution, the sandbox (run with --allow-bind 127.0.0.1,
// --allow-bind [::1], --allow-connect 127.0.0.1:CLOSED_PORT and
// --allow-resolve localhost, where nothing listens on CLOSED_PORT), bad
// pointers, rights. Prints "CHECK: ok" or what went wrong, one per line.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi_socket_ext.h>

static int failures = 0;

static void check(const char* name, int ok, const char* detail) {
  if (ok) {
    printf("%s: ok\n", name);
  } else {
    printf("%s: FAILED (%s)\n", name, detail);
    ++failures;
  }
}

// The call returned -1 with errno `expected`.
static void check_errno(const char* name, int rc, int expected) {
  char detail[96];
  snprintf(detail, sizeof detail, "rc %d, errno %d (%s), expected %d", rc, errno, strerror(errno),
           expected);
  check(name, rc == -1 && errno == expected, detail);
}

static void check_wasi(const char* name, __wasi_errno_t got, __wasi_errno_t expected) {
  char detail[64];
  snprintf(detail, sizeof detail, "got %d, expected %d", got, expected);
  check(name, got == expected, detail);
}

static struct sockaddr_in ipv4(const char* ip, int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

static int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) != 0) return -1000 - errno;
  return v;
}

// setsockopt(value) then getsockopt gives `expected`.
static void round_trip(const char* name, int fd, int level, int opt, int value, int expected) {
  char detail[64];
  int rc = setsockopt(fd, level, opt, &value, sizeof value);
  int got = get_int(fd, level, opt);
  snprintf(detail, sizeof detail, "set rc %d errno %d, got %d", rc, rc ? errno : 0, got);
  check(name, rc == 0 && got == expected, detail);
}

static void options(void) {
  int tcp = socket(AF_INET, SOCK_STREAM, 0);
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  int tcp6 = socket(AF_INET6, SOCK_STREAM, 0);
  check("socket tcp, udp, tcp6", tcp >= 0 && udp >= 0 && tcp6 >= 0, strerror(errno));
  check("SO_TYPE stream", get_int(tcp, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "");
  check("SO_TYPE dgram", get_int(udp, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "");
  round_trip("SO_REUSEADDR on", tcp, SOL_SOCKET, SO_REUSEADDR, 1, 1);
  round_trip("SO_REUSEADDR off", tcp, SOL_SOCKET, SO_REUSEADDR, 0, 0);
  round_trip("SO_REUSEPORT on", tcp, SOL_SOCKET, SO_REUSEPORT, 1, 1);
  round_trip("SO_KEEPALIVE on", tcp, SOL_SOCKET, SO_KEEPALIVE, 1, 1);
  round_trip("TCP_NODELAY on", tcp, IPPROTO_TCP, TCP_NODELAY, 1, 1);
  round_trip("TCP_KEEPIDLE 77", tcp, IPPROTO_TCP, TCP_KEEPIDLE, 77, 77);
  round_trip("TCP_KEEPINTVL 13", tcp, IPPROTO_TCP, TCP_KEEPINTVL, 13, 13);
  round_trip("IP_TTL 42", tcp, IPPROTO_IP, IP_TTL, 42, 42);
  round_trip("SO_BROADCAST on", udp, SOL_SOCKET, SO_BROADCAST, 1, 1);
  round_trip("IP_MULTICAST_TTL 3", udp, IPPROTO_IP, IP_MULTICAST_TTL, 3, 3);
  round_trip("IP_MULTICAST_LOOP off", udp, IPPROTO_IP, IP_MULTICAST_LOOP, 0, 0);
  round_trip("IPV6_V6ONLY on", tcp6, IPPROTO_IPV6, IPV6_V6ONLY, 1, 1);

  int size = 65536;
  int rc = setsockopt(tcp, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  check("SO_RCVBUF 65536 (the kernel may give more)",
        rc == 0 && get_int(tcp, SOL_SOCKET, SO_RCVBUF) >= 65536, "");
  rc = setsockopt(tcp, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  check("SO_SNDBUF 65536", rc == 0 && get_int(tcp, SOL_SOCKET, SO_SNDBUF) >= 65536, "");

  struct linger l = {1, 5}, back = {0, 0};
  socklen_t len = sizeof back;
  rc = setsockopt(tcp, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  getsockopt(tcp, SOL_SOCKET, SO_LINGER, &back, &len);
  check("SO_LINGER on 5s", rc == 0 && back.l_onoff == 1 && back.l_linger == 5, "");

  struct timeval tv = {1, 500000}, tv_back = {0, 0};
  len = sizeof tv_back;
  rc = setsockopt(tcp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  getsockopt(tcp, SOL_SOCKET, SO_RCVTIMEO, &tv_back, &len);
  check("SO_RCVTIMEO 1.5s", rc == 0 && tv_back.tv_sec == 1 && tv_back.tv_usec == 500000, "");
  tv.tv_sec = 3;
  tv.tv_usec = 0;
  rc = setsockopt(tcp, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  getsockopt(tcp, SOL_SOCKET, SO_SNDTIMEO, &tv_back, &len);
  check("SO_SNDTIMEO 3s", rc == 0 && tv_back.tv_sec == 3 && tv_back.tv_usec == 0, "");

  int one = 1;
  check_errno("unknown option is ENOPROTOOPT", setsockopt(tcp, SOL_SOCKET, 12345, &one, sizeof one),
              ENOPROTOOPT);
  close(tcp);
  close(udp);
  close(tcp6);
}

static void addresses(int closed_port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = ipv4("127.0.0.1", 0), got;
  socklen_t len = sizeof got;
  check("bind 127.0.0.1:0 (allowed)", bind(fd, (struct sockaddr*)&a, sizeof a) == 0,
        strerror(errno));
  int rc = getsockname(fd, (struct sockaddr*)&got, &len);
  check("getsockname: 127.0.0.1, a port",
        rc == 0 && len == sizeof got && got.sin_family == AF_INET &&
            got.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && got.sin_port != 0,
        "");
  check_errno("getpeername of an unconnected socket is ENOTCONN",
              getpeername(fd, (struct sockaddr*)&got, &len), ENOTCONN);
  struct sockaddr_in target = ipv4("127.0.0.1", closed_port);
  check_errno("connect to a closed allowed port is ECONNREFUSED",
              connect(fd, (struct sockaddr*)&target, sizeof target), ECONNREFUSED);
  close(fd);

  int fd6 = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 a6, got6;
  memset(&a6, 0, sizeof a6);
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  len = sizeof got6;
  rc = bind(fd6, (struct sockaddr*)&a6, sizeof a6);
  getsockname(fd6, (struct sockaddr*)&got6, &len);
  check("bind [::1]:0 and getsockname",
        rc == 0 && got6.sin6_family == AF_INET6 &&
            memcmp(&got6.sin6_addr, &in6addr_loopback, 16) == 0 && got6.sin6_port != 0,
        strerror(errno));
  close(fd6);
}

static void sandbox(int closed_port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in other = ipv4("127.0.0.2", 0);
  check_errno("bind 127.0.0.2 is EACCES", bind(fd, (struct sockaddr*)&other, sizeof other), EACCES);
  check_errno("listen unbound (binds 0.0.0.0) is EACCES", listen(fd, 4), EACCES);
  struct sockaddr_in target = ipv4("127.0.0.1", closed_port + 1 == 65536 ? 1 : closed_port + 1);
  check_errno("connect to a port not allowed is EACCES",
              connect(fd, (struct sockaddr*)&target, sizeof target), EACCES);
  close(fd);
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in dest = ipv4("127.0.0.3", 9);
  check_errno("sendto an address not allowed is EACCES",
              (int)sendto(udp, "x", 1, 0, (struct sockaddr*)&dest, sizeof dest), EACCES);
  close(udp);
}

static void resolve(void) {
  struct addrinfo hints = {0}, *list = NULL;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo("127.0.0.1", "8080", &hints, &list);
  struct sockaddr_in* in4 = list ? (struct sockaddr_in*)list->ai_addr : NULL;
  check("getaddrinfo 127.0.0.1:8080",
        rc == 0 && list->ai_family == AF_INET && list->ai_socktype == SOCK_STREAM &&
            in4->sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(in4->sin_port) == 8080 &&
            !list->ai_next,
        gai_strerror(rc));
  if (rc == 0) freeaddrinfo(list);

  rc = getaddrinfo("::1", "443", &hints, &list);
  struct sockaddr_in6* in6 = rc == 0 ? (struct sockaddr_in6*)list->ai_addr : NULL;
  check("getaddrinfo [::1]:443",
        rc == 0 && list->ai_family == AF_INET6 &&
            memcmp(&in6->sin6_addr, &in6addr_loopback, 16) == 0 && ntohs(in6->sin6_port) == 443,
        gai_strerror(rc));
  if (rc == 0) freeaddrinfo(list);

  hints.ai_family = AF_INET;
  rc = getaddrinfo("localhost", NULL, &hints, &list);
  int found = 0;
  for (struct addrinfo* ai = rc == 0 ? list : NULL; ai; ai = ai->ai_next)
    found |= ((struct sockaddr_in*)ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
  check("getaddrinfo localhost (allowed) has 127.0.0.1", rc == 0 && found, gai_strerror(rc));
  if (rc == 0) freeaddrinfo(list);

  rc = getaddrinfo("example.invalid", "80", &hints, &list);
  check("getaddrinfo of a name not allowed: EAI_SYSTEM, EACCES",
        rc == EAI_SYSTEM && errno == EACCES, gai_strerror(rc));
  hints.ai_flags = AI_NUMERICHOST;
  rc = getaddrinfo("localhost", "80", &hints, &list);
  check("AI_NUMERICHOST with a name is EAI_NONAME", rc == EAI_NONAME, gai_strerror(rc));
}

static void raw_calls(void) {
  void* bad = (void*)0xfffffff0u; // past the end of linear memory
  __wasi_fd_t fd = 0;
  check_wasi("sock_open with a bad fd pointer is EFAULT",
             __wasi_sock_open(-1, INET4, SOCKET_STREAM, bad), __WASI_ERRNO_FAULT);
  check_wasi("sock_open of an unknown family is EAFNOSUPPORT",
             __wasi_sock_open(-1, (__wasi_address_family_t)7, SOCKET_STREAM, &fd),
             __WASI_ERRNO_AFNOSUPPORT);
  check_wasi("sock_open", __wasi_sock_open(-1, INET4, SOCKET_STREAM, &fd), __WASI_ERRNO_SUCCESS);
  check_wasi("sock_bind with a bad address pointer is EFAULT", __wasi_sock_bind(fd, bad),
             __WASI_ERRNO_FAULT);
  check_wasi("sock_addr_local with a bad pointer is EFAULT", __wasi_sock_addr_local(fd, bad),
             __WASI_ERRNO_FAULT);
  check_wasi("sock_get_reuse_addr with a bad pointer is EFAULT",
             __wasi_sock_get_reuse_addr(fd, bad), __WASI_ERRNO_FAULT);
  __wasi_addr_info_hints_t hints = {SOCKET_ANY, INET_UNSPEC, 0};
  __wasi_size_t count = 0;
  check_wasi("sock_addr_resolve with a bad result pointer is EFAULT",
             __wasi_sock_addr_resolve("127.0.0.1", "", &hints, bad, 4, &count), __WASI_ERRNO_FAULT);
  check_wasi("sock_addr_resolve with a bad host pointer is EFAULT",
             __wasi_sock_addr_resolve(bad, "", &hints, NULL, 0, &count), __WASI_ERRNO_FAULT);
  __wasi_addr_t odd;
  memset(&odd, 0, sizeof odd);
  odd.kind = (__wasi_addr_type_t)9;
  check_wasi("sock_bind of an unknown address kind is EPROTONOSUPPORT", __wasi_sock_bind(fd, &odd),
             __WASI_ERRNO_PROTONOSUPPORT);
  __wasi_addr_t loopback = {IPv4, {.ip4 = {{127, 0, 0, 1}, 0}}};
  check_wasi("sock_bind on stdin (not a socket) is ENOTSOCK", __wasi_sock_bind(0, &loopback),
             __WASI_ERRNO_NOTSOCK);
  __wasi_fdstat_t st;
  (void)__wasi_fd_fdstat_get(fd, &st);
  (void)__wasi_fd_fdstat_set_rights(fd, st.fs_rights_base & ~((__wasi_rights_t)1 << 32),
                                    st.fs_rights_inheriting);
  check_wasi("sock_bind without the bind right is ENOTCAPABLE", __wasi_sock_bind(fd, &loopback),
             __WASI_ERRNO_NOTCAPABLE);
  check_wasi("sock_close", __wasi_sock_close(fd), __WASI_ERRNO_SUCCESS);
  check_wasi("sock_close again is EBADF", __wasi_sock_close(fd), __WASI_ERRNO_BADF);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: sock_api CLOSED_PORT\n");
    return 2;
  }
  int closed_port = atoi(argv[1]);
  options();
  addresses(closed_port);
  sandbox(closed_port);
  resolve();
  raw_calls();
  printf("failures: %d\n", failures);
  return failures ? 1 : 0;
}
