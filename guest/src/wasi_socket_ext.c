/*
 * The BSD socket API on top of the socket extension's host calls, for
 * Debian's wasi-libc (see guest/include/wasi_socket_ext.h). Errors follow
 * libc's convention: -1 with errno set (wasi-libc's errno values are the
 * WASI errno numbers the host returns, so they pass through unchanged).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wasi_socket_ext.h>

/* Returns -1 with errno set when `error` is not success. */
#define RETURN_IF_FAILED(error)                                                                    \
  do {                                                                                             \
    __wasi_errno_t e_ = (error);                                                                   \
    if (e_ != __WASI_ERRNO_SUCCESS) {                                                              \
      errno = e_;                                                                                  \
      return -1;                                                                                   \
    }                                                                                              \
  } while (0)

/* --- Addresses ---------------------------------------------------------- */

static __wasi_errno_t to_wasi_addr(const struct sockaddr* sa, socklen_t len, __wasi_addr_t* out) {
  memset(out, 0, sizeof *out);
  if (!sa) return __WASI_ERRNO_FAULT;
  if (sa->sa_family == AF_INET) {
    if (len < sizeof(struct sockaddr_in)) return __WASI_ERRNO_INVAL;
    const struct sockaddr_in* in4 = (const struct sockaddr_in*)sa;
    const uint8_t* ip = (const uint8_t*)&in4->sin_addr;
    out->kind = IPv4;
    out->addr.ip4.addr = (__wasi_addr_ip4_t){ip[0], ip[1], ip[2], ip[3]};
    out->addr.ip4.port = ntohs(in4->sin_port);
    return __WASI_ERRNO_SUCCESS;
  }
  if (sa->sa_family == AF_INET6) {
    if (len < sizeof(struct sockaddr_in6)) return __WASI_ERRNO_INVAL;
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)sa;
    const uint8_t* ip = in6->sin6_addr.s6_addr;
    uint16_t g[8];
    for (int i = 0; i < 8; ++i) g[i] = (uint16_t)(ip[2 * i] << 8 | ip[2 * i + 1]);
    out->kind = IPv6;
    out->addr.ip6.addr = (__wasi_addr_ip6_t){g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]};
    out->addr.ip6.port = ntohs(in6->sin6_port);
    return __WASI_ERRNO_SUCCESS;
  }
  return __WASI_ERRNO_AFNOSUPPORT;
}

/* The host form of `addr` in `storage`; its length. */
static socklen_t from_wasi_addr(const __wasi_addr_t* addr, struct sockaddr_storage* storage) {
  memset(storage, 0, sizeof *storage);
  if (addr->kind == IPv4) {
    struct sockaddr_in* in4 = (struct sockaddr_in*)storage;
    const __wasi_addr_ip4_t* a = &addr->addr.ip4.addr;
    uint8_t* ip = (uint8_t*)&in4->sin_addr;
    ip[0] = a->n0, ip[1] = a->n1, ip[2] = a->n2, ip[3] = a->n3;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(addr->addr.ip4.port);
    return sizeof *in4;
  }
  struct sockaddr_in6* in6 = (struct sockaddr_in6*)storage;
  const __wasi_addr_ip6_t* a = &addr->addr.ip6.addr;
  uint16_t g[8] = {a->n0, a->n1, a->n2, a->n3, a->h0, a->h1, a->h2, a->h3};
  for (int i = 0; i < 8; ++i) {
    in6->sin6_addr.s6_addr[2 * i] = (uint8_t)(g[i] >> 8);
    in6->sin6_addr.s6_addr[2 * i + 1] = (uint8_t)g[i];
  }
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(addr->addr.ip6.port);
  return sizeof *in6;
}

/* Copies `addr` to the caller's (addr, *addrlen) as POSIX asks: cut to the
 * buffer's size, *addrlen set to the full size. */
static void give_address(const __wasi_addr_t* wasi_addr, struct sockaddr* addr,
                         socklen_t* addrlen) {
  if (!addr || !addrlen) return;
  struct sockaddr_storage storage;
  socklen_t len = from_wasi_addr(wasi_addr, &storage);
  memcpy(addr, &storage, *addrlen < len ? *addrlen : len);
  *addrlen = len;
}

/* --- Sockets ------------------------------------------------------------ */

int socket(int domain, int type, int protocol) {
  int flags = type & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  __wasi_address_family_t af;
  __wasi_sock_type_t socktype;
  if (domain == AF_INET) {
    af = INET4;
  } else if (domain == AF_INET6) {
    af = INET6;
  } else {
    errno = EAFNOSUPPORT;
    return -1;
  }
  if (type == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP)) {
    socktype = SOCKET_STREAM;
  } else if (type == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP)) {
    socktype = SOCKET_DGRAM;
  } else {
    errno = type == SOCK_STREAM || type == SOCK_DGRAM ? EPROTONOSUPPORT : EPROTOTYPE;
    return -1;
  }
  __wasi_fd_t fd;
  RETURN_IF_FAILED(__wasi_sock_open((__wasi_fd_t)-1, af, socktype, &fd));
  if (flags & SOCK_NONBLOCK) {
    __wasi_errno_t error = __wasi_fd_fdstat_set_flags(fd, __WASI_FDFLAGS_NONBLOCK);
    if (error != __WASI_ERRNO_SUCCESS) {
      (void)__wasi_fd_close(fd);
      errno = error;
      return -1;
    }
  }
  return (int)fd;
}

int bind(int sockfd, const struct sockaddr* addr, socklen_t addrlen) {
  __wasi_addr_t wasi_addr;
  RETURN_IF_FAILED(to_wasi_addr(addr, addrlen, &wasi_addr));
  RETURN_IF_FAILED(__wasi_sock_bind(sockfd, &wasi_addr));
  return 0;
}

int listen(int sockfd, int backlog) {
  RETURN_IF_FAILED(__wasi_sock_listen(sockfd, backlog < 0 ? 0 : (__wasi_size_t)backlog));
  return 0;
}

int connect(int sockfd, const struct sockaddr* addr, socklen_t addrlen) {
  __wasi_addr_t wasi_addr;
  RETURN_IF_FAILED(to_wasi_addr(addr, addrlen, &wasi_addr));
  RETURN_IF_FAILED(__wasi_sock_connect(sockfd, &wasi_addr));
  return 0;
}

int accept4(int sockfd, struct sockaddr* addr, socklen_t* addrlen, int flags) {
  __wasi_fd_t fd;
  __wasi_fdflags_t fdflags = (flags & SOCK_NONBLOCK) ? __WASI_FDFLAGS_NONBLOCK : 0;
  RETURN_IF_FAILED(__wasi_sock_accept(sockfd, fdflags, &fd));
  if (addr && addrlen) {
    __wasi_addr_t peer;
    if (__wasi_sock_addr_remote(fd, &peer) == __WASI_ERRNO_SUCCESS) {
      give_address(&peer, addr, addrlen);
    } else {
      *addrlen = 0; /* the peer has gone already: no address, but a connection */
    }
  }
  return (int)fd;
}

int accept(int sockfd, struct sockaddr* addr, socklen_t* addrlen) {
  return accept4(sockfd, addr, addrlen, 0);
}

int getsockname(int sockfd, struct sockaddr* addr, socklen_t* addrlen) {
  __wasi_addr_t wasi_addr;
  if (!addr || !addrlen) {
    errno = EFAULT;
    return -1;
  }
  RETURN_IF_FAILED(__wasi_sock_addr_local(sockfd, &wasi_addr));
  give_address(&wasi_addr, addr, addrlen);
  return 0;
}

int getpeername(int sockfd, struct sockaddr* addr, socklen_t* addrlen) {
  __wasi_addr_t wasi_addr;
  if (!addr || !addrlen) {
    errno = EFAULT;
    return -1;
  }
  RETURN_IF_FAILED(__wasi_sock_addr_remote(sockfd, &wasi_addr));
  give_address(&wasi_addr, addr, addrlen);
  return 0;
}

/* --- Data --------------------------------------------------------------- */

ssize_t sendto(int sockfd, const void* buf, size_t len, int flags, const struct sockaddr* dest_addr,
               socklen_t addrlen) {
  if (!dest_addr) return send(sockfd, buf, len, flags);
  if (flags != 0) {
    errno = EOPNOTSUPP;
    return -1;
  }
  __wasi_addr_t wasi_addr;
  RETURN_IF_FAILED(to_wasi_addr(dest_addr, addrlen, &wasi_addr));
  __wasi_ciovec_t iov = {(const uint8_t*)buf, len};
  uint32_t sent = 0;
  RETURN_IF_FAILED(__wasi_sock_send_to(sockfd, &iov, 1, 0, &wasi_addr, &sent));
  return (ssize_t)sent;
}

ssize_t recvfrom(int sockfd, void* buf, size_t len, int flags, struct sockaddr* src_addr,
                 socklen_t* addrlen) {
  if (!src_addr) return recv(sockfd, buf, len, flags);
  if (flags & ~MSG_PEEK) {
    errno = EOPNOTSUPP;
    return -1;
  }
  __wasi_ciovec_t iov = {(uint8_t*)buf, len};
  __wasi_addr_t wasi_addr;
  uint32_t got = 0;
  RETURN_IF_FAILED(
      __wasi_sock_recv_from(sockfd, &iov, 1, (__wasi_riflags_t)flags, &wasi_addr, &got));
  give_address(&wasi_addr, src_addr, addrlen);
  return (ssize_t)got;
}

/* struct iovec and __wasi_ciovec_t have the same layout on wasm32. */
_Static_assert(sizeof(struct iovec) == sizeof(__wasi_ciovec_t), "iovec layout");

ssize_t sendmsg(int sockfd, const struct msghdr* msg, int flags) {
  if (!msg) {
    errno = EFAULT;
    return -1;
  }
  if (flags != 0) {
    errno = EOPNOTSUPP;
    return -1;
  }
  const __wasi_ciovec_t* iov = (const __wasi_ciovec_t*)msg->msg_iov;
  uint32_t sent = 0;
  if (msg->msg_name) {
    __wasi_addr_t dest;
    RETURN_IF_FAILED(to_wasi_addr(msg->msg_name, msg->msg_namelen, &dest));
    RETURN_IF_FAILED(__wasi_sock_send_to(sockfd, iov, msg->msg_iovlen, 0, &dest, &sent));
  } else {
    size_t n = 0;
    RETURN_IF_FAILED(__wasi_sock_send(sockfd, iov, msg->msg_iovlen, 0, &n));
    sent = (uint32_t)n;
  }
  return (ssize_t)sent;
}

ssize_t recvmsg(int sockfd, struct msghdr* msg, int flags) {
  if (!msg) {
    errno = EFAULT;
    return -1;
  }
  __wasi_ciovec_t* iov = (__wasi_ciovec_t*)msg->msg_iov;
  msg->msg_flags = 0;
  msg->msg_controllen = 0;
  if (msg->msg_name) {
    if (flags & ~MSG_PEEK) {
      errno = EOPNOTSUPP;
      return -1;
    }
    __wasi_addr_t source;
    uint32_t got = 0;
    RETURN_IF_FAILED(__wasi_sock_recv_from(sockfd, iov, msg->msg_iovlen, (__wasi_riflags_t)flags,
                                           &source, &got));
    give_address(&source, msg->msg_name, &msg->msg_namelen);
    return (ssize_t)got;
  }
  size_t got = 0;
  __wasi_roflags_t roflags = 0;
  RETURN_IF_FAILED(__wasi_sock_recv(sockfd, (const __wasi_iovec_t*)iov, msg->msg_iovlen,
                                    (__wasi_riflags_t)flags, &got, &roflags));
  /* MSG_TRUNC's value: wasi-libc spells MSG_TRUNC with a name that its
   * <wasi/api.h> does not define. */
  if (roflags & __WASI_ROFLAGS_RECV_DATA_TRUNCATED)
    msg->msg_flags |= __WASI_ROFLAGS_RECV_DATA_TRUNCATED;
  return (ssize_t)got;
}

/* --- Options ------------------------------------------------------------ */

static int int_value(const void* optval, socklen_t optlen, int* out) {
  if (!optval || optlen < sizeof(int)) {
    errno = EINVAL;
    return -1;
  }
  memcpy(out, optval, sizeof(int));
  return 0;
}

static int timeval_value(const void* optval, socklen_t optlen, uint64_t* us) {
  struct timeval tv;
  if (!optval || optlen < sizeof tv) {
    errno = EINVAL;
    return -1;
  }
  memcpy(&tv, optval, sizeof tv);
  if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000) {
    errno = EDOM;
    return -1;
  }
  // Beyond what microseconds in an int64 hold: as good as for ever.
  if ((uint64_t)tv.tv_sec > ((uint64_t)INT64_MAX - (uint64_t)tv.tv_usec) / 1000000u)
    *us = INT64_MAX;
  else
    *us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
  return 0;
}

static int set_membership(int sockfd, int level, const void* optval, socklen_t optlen, bool join) {
  __wasi_addr_ip_t group;
  memset(&group, 0, sizeof group);
  uint32_t interface;
  if (level == IPPROTO_IP) {
    struct ip_mreq req;
    if (!optval || optlen < sizeof req) {
      errno = EINVAL;
      return -1;
    }
    memcpy(&req, optval, sizeof req);
    const uint8_t* ip = (const uint8_t*)&req.imr_multiaddr;
    group.kind = IPv4;
    group.addr.ip4 = (__wasi_addr_ip4_t){ip[0], ip[1], ip[2], ip[3]};
    interface = req.imr_interface.s_addr;
  } else {
    struct ipv6_mreq req;
    if (!optval || optlen < sizeof req) {
      errno = EINVAL;
      return -1;
    }
    memcpy(&req, optval, sizeof req);
    const uint8_t* ip = req.ipv6mr_multiaddr.s6_addr;
    uint16_t g[8];
    for (int i = 0; i < 8; ++i) g[i] = (uint16_t)(ip[2 * i] << 8 | ip[2 * i + 1]);
    group.kind = IPv6;
    group.addr.ip6 = (__wasi_addr_ip6_t){g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]};
    interface = req.ipv6mr_interface;
  }
  RETURN_IF_FAILED(join ? __wasi_sock_set_ip_add_membership(sockfd, &group, interface)
                        : __wasi_sock_set_ip_drop_membership(sockfd, &group, interface));
  return 0;
}

static int set_socket_level(int sockfd, int optname, const void* optval, socklen_t optlen) {
  int v;
  uint64_t us;
  switch (optname) {
  case SO_RCVTIMEO:
  case SO_SNDTIMEO:
    if (timeval_value(optval, optlen, &us) != 0) return -1;
    RETURN_IF_FAILED(optname == SO_RCVTIMEO ? __wasi_sock_set_recv_timeout(sockfd, us)
                                            : __wasi_sock_set_send_timeout(sockfd, us));
    return 0;
  case SO_LINGER: {
    struct linger l;
    if (!optval || optlen < sizeof l) {
      errno = EINVAL;
      return -1;
    }
    memcpy(&l, optval, sizeof l);
    RETURN_IF_FAILED(__wasi_sock_set_linger(sockfd, l.l_onoff != 0, l.l_linger));
    return 0;
  }
  }
  if (int_value(optval, optlen, &v) != 0) return -1;
  switch (optname) {
  case SO_REUSEADDR:
    RETURN_IF_FAILED(__wasi_sock_set_reuse_addr(sockfd, v != 0));
    return 0;
  case SO_REUSEPORT:
    RETURN_IF_FAILED(__wasi_sock_set_reuse_port(sockfd, v != 0));
    return 0;
  case SO_KEEPALIVE:
    RETURN_IF_FAILED(__wasi_sock_set_keep_alive(sockfd, v != 0));
    return 0;
  case SO_BROADCAST:
    RETURN_IF_FAILED(__wasi_sock_set_broadcast(sockfd, v != 0));
    return 0;
  case SO_SNDBUF:
  case SO_RCVBUF:
    if (v < 0) {
      errno = EINVAL;
      return -1;
    }
    RETURN_IF_FAILED(optname == SO_SNDBUF
                         ? __wasi_sock_set_send_buf_size(sockfd, (__wasi_size_t)v)
                         : __wasi_sock_set_recv_buf_size(sockfd, (__wasi_size_t)v));
    return 0;
  }
  errno = ENOPROTOOPT;
  return -1;
}

static int set_tcp_level(int sockfd, int optname, int v) {
  switch (optname) {
  case TCP_NODELAY:
    RETURN_IF_FAILED(__wasi_sock_set_tcp_no_delay(sockfd, v != 0));
    return 0;
  case TCP_QUICKACK:
    RETURN_IF_FAILED(__wasi_sock_set_tcp_quick_ack(sockfd, v != 0));
    return 0;
  case TCP_FASTOPEN_CONNECT:
    RETURN_IF_FAILED(__wasi_sock_set_tcp_fastopen_connect(sockfd, v != 0));
    return 0;
  case TCP_KEEPIDLE:
  case TCP_KEEPINTVL:
    if (v < 1) {
      errno = EINVAL;
      return -1;
    }
    RETURN_IF_FAILED(optname == TCP_KEEPIDLE ? __wasi_sock_set_tcp_keep_idle(sockfd, (uint32_t)v)
                                             : __wasi_sock_set_tcp_keep_intvl(sockfd, (uint32_t)v));
    return 0;
  }
  errno = ENOPROTOOPT;
  return -1;
}

static int set_ip_level(int sockfd, int level, int optname, int v) {
  bool ipv6 = level == IPPROTO_IPV6;
  if ((optname == IP_TTL && !ipv6) || (optname == IP_MULTICAST_TTL && !ipv6)) {
    if (v < 0 || v > 255) {
      errno = EINVAL;
      return -1;
    }
    RETURN_IF_FAILED(optname == IP_TTL ? __wasi_sock_set_ip_ttl(sockfd, (uint8_t)v)
                                       : __wasi_sock_set_ip_multicast_ttl(sockfd, (uint8_t)v));
    return 0;
  }
  if ((optname == IP_MULTICAST_LOOP && !ipv6) || (optname == IPV6_MULTICAST_LOOP && ipv6)) {
    RETURN_IF_FAILED(__wasi_sock_set_ip_multicast_loop(sockfd, ipv6, v != 0));
    return 0;
  }
  if (optname == IPV6_V6ONLY && ipv6) {
    RETURN_IF_FAILED(__wasi_sock_set_ipv6_only(sockfd, v != 0));
    return 0;
  }
  errno = ENOPROTOOPT;
  return -1;
}

int setsockopt(int sockfd, int level, int optname, const void* optval, socklen_t optlen) {
  int v;
  if (level == SOL_SOCKET) return set_socket_level(sockfd, optname, optval, optlen);
  if ((level == IPPROTO_IP && (optname == IP_ADD_MEMBERSHIP || optname == IP_DROP_MEMBERSHIP)) ||
      (level == IPPROTO_IPV6 && (optname == IPV6_JOIN_GROUP || optname == IPV6_LEAVE_GROUP))) {
    bool join = optname == IP_ADD_MEMBERSHIP || optname == IPV6_JOIN_GROUP;
    return set_membership(sockfd, level, optval, optlen, join);
  }
  if (level != IPPROTO_TCP && level != IPPROTO_IP && level != IPPROTO_IPV6) {
    errno = ENOPROTOOPT;
    return -1;
  }
  if (int_value(optval, optlen, &v) != 0) return -1;
  if (level == IPPROTO_TCP) return set_tcp_level(sockfd, optname, v);
  return set_ip_level(sockfd, level, optname, v);
}

/* Writes an int option's value to the caller's (optval, *optlen). */
static int give_int(int value, void* optval, socklen_t* optlen) {
  if (!optval || !optlen || *optlen < sizeof(int)) {
    errno = EINVAL;
    return -1;
  }
  memcpy(optval, &value, sizeof value);
  *optlen = sizeof value;
  return 0;
}

static int give_bool(__wasi_errno_t error, bool value, void* optval, socklen_t* optlen) {
  RETURN_IF_FAILED(error);
  return give_int(value ? 1 : 0, optval, optlen);
}

static int give_timeval(uint64_t us, void* optval, socklen_t* optlen) {
  struct timeval tv = {(time_t)(us / 1000000u), (suseconds_t)(us % 1000000u)};
  if (!optval || !optlen || *optlen < sizeof tv) {
    errno = EINVAL;
    return -1;
  }
  memcpy(optval, &tv, sizeof tv);
  *optlen = sizeof tv;
  return 0;
}

static int get_socket_level(int sockfd, int optname, void* optval, socklen_t* optlen) {
  bool b = false;
  __wasi_size_t size = 0;
  uint64_t us = 0;
  switch (optname) {
  case SO_TYPE: {
    __wasi_fdstat_t st;
    RETURN_IF_FAILED(__wasi_fd_fdstat_get(sockfd, &st));
    if (st.fs_filetype != __WASI_FILETYPE_SOCKET_STREAM &&
        st.fs_filetype != __WASI_FILETYPE_SOCKET_DGRAM) {
      errno = ENOTSOCK;
      return -1;
    }
    return give_int(st.fs_filetype, optval, optlen); /* SOCK_STREAM or SOCK_DGRAM */
  }
  case SO_ERROR:
    /* The ABI keeps no pending error: a failed non-blocking connect is
     * reported by the next connect (or send/recv) on the socket. */
    return give_int(0, optval, optlen);
  case SO_REUSEADDR:
    return give_bool(__wasi_sock_get_reuse_addr(sockfd, &b), b, optval, optlen);
  case SO_REUSEPORT:
    return give_bool(__wasi_sock_get_reuse_port(sockfd, &b), b, optval, optlen);
  case SO_KEEPALIVE:
    return give_bool(__wasi_sock_get_keep_alive(sockfd, &b), b, optval, optlen);
  case SO_BROADCAST:
    return give_bool(__wasi_sock_get_broadcast(sockfd, &b), b, optval, optlen);
  case SO_SNDBUF:
    RETURN_IF_FAILED(__wasi_sock_get_send_buf_size(sockfd, &size));
    return give_int((int)size, optval, optlen);
  case SO_RCVBUF:
    RETURN_IF_FAILED(__wasi_sock_get_recv_buf_size(sockfd, &size));
    return give_int((int)size, optval, optlen);
  case SO_RCVTIMEO:
    RETURN_IF_FAILED(__wasi_sock_get_recv_timeout(sockfd, &us));
    return give_timeval(us, optval, optlen);
  case SO_SNDTIMEO:
    RETURN_IF_FAILED(__wasi_sock_get_send_timeout(sockfd, &us));
    return give_timeval(us, optval, optlen);
  case SO_LINGER: {
    int seconds = 0;
    RETURN_IF_FAILED(__wasi_sock_get_linger(sockfd, &b, &seconds));
    struct linger l = {b ? 1 : 0, seconds};
    if (!optval || !optlen || *optlen < sizeof l) {
      errno = EINVAL;
      return -1;
    }
    memcpy(optval, &l, sizeof l);
    *optlen = sizeof l;
    return 0;
  }
  }
  errno = ENOPROTOOPT;
  return -1;
}

static int get_tcp_level(int sockfd, int optname, void* optval, socklen_t* optlen) {
  bool b = false;
  uint32_t seconds = 0;
  switch (optname) {
  case TCP_NODELAY:
    return give_bool(__wasi_sock_get_tcp_no_delay(sockfd, &b), b, optval, optlen);
  case TCP_QUICKACK:
    return give_bool(__wasi_sock_get_tcp_quick_ack(sockfd, &b), b, optval, optlen);
  case TCP_FASTOPEN_CONNECT:
    return give_bool(__wasi_sock_get_tcp_fastopen_connect(sockfd, &b), b, optval, optlen);
  case TCP_KEEPIDLE:
    RETURN_IF_FAILED(__wasi_sock_get_tcp_keep_idle(sockfd, &seconds));
    return give_int((int)seconds, optval, optlen);
  case TCP_KEEPINTVL:
    RETURN_IF_FAILED(__wasi_sock_get_tcp_keep_intvl(sockfd, &seconds));
    return give_int((int)seconds, optval, optlen);
  }
  errno = ENOPROTOOPT;
  return -1;
}

static int get_ip_level(int sockfd, int level, int optname, void* optval, socklen_t* optlen) {
  bool ipv6 = level == IPPROTO_IPV6;
  bool b = false;
  uint8_t ttl = 0;
  if (!ipv6 && optname == IP_TTL) {
    RETURN_IF_FAILED(__wasi_sock_get_ip_ttl(sockfd, &ttl));
    return give_int(ttl, optval, optlen);
  }
  if (!ipv6 && optname == IP_MULTICAST_TTL) {
    RETURN_IF_FAILED(__wasi_sock_get_ip_multicast_ttl(sockfd, &ttl));
    return give_int(ttl, optval, optlen);
  }
  if ((!ipv6 && optname == IP_MULTICAST_LOOP) || (ipv6 && optname == IPV6_MULTICAST_LOOP))
    return give_bool(__wasi_sock_get_ip_multicast_loop(sockfd, ipv6, &b), b, optval, optlen);
  if (ipv6 && optname == IPV6_V6ONLY)
    return give_bool(__wasi_sock_get_ipv6_only(sockfd, &b), b, optval, optlen);
  errno = ENOPROTOOPT;
  return -1;
}

int getsockopt(int sockfd, int level, int optname, void* __restrict optval,
               socklen_t* __restrict optlen) {
  if (level == SOL_SOCKET) return get_socket_level(sockfd, optname, optval, optlen);
  if (level == IPPROTO_TCP) return get_tcp_level(sockfd, optname, optval, optlen);
  if (level == IPPROTO_IP || level == IPPROTO_IPV6)
    return get_ip_level(sockfd, level, optname, optval, optlen);
  errno = ENOPROTOOPT;
  return -1;
}

/* --- Names -------------------------------------------------------------- */

/* One answer of getaddrinfo, with room for its address; a list is an array
 * of them, freed at once by freeaddrinfo. */
struct answer {
  struct addrinfo ai;
  struct sockaddr_storage addr;
};

static int eai_from_errno(__wasi_errno_t error) {
  switch (error) {
  case __WASI_ERRNO_AGAIN:
    return EAI_AGAIN;
  case __WASI_ERRNO_NOMEM:
    return EAI_MEMORY;
  case __WASI_ERRNO_INVAL:
    return EAI_NONAME;
  case __WASI_ERRNO_AFNOSUPPORT:
    return EAI_FAMILY;
  default:
    errno = error; /* EACCES: tern's --allow-resolve does not name the host */
    return EAI_SYSTEM;
  }
}

static int check_hints(const struct addrinfo* hints, __wasi_addr_info_hints_t* out) {
  memset(out, 0, sizeof *out);
  out->type = SOCKET_ANY;
  out->family = INET_UNSPEC;
  if (!hints) return 0;
  if (hints->ai_flags & ~(AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_NUMERICSERV))
    return EAI_BADFLAGS;
  out->hints_enabled = 1;
  switch (hints->ai_family) {
  case AF_UNSPEC:
    break;
  case AF_INET:
    out->family = INET4;
    break;
  case AF_INET6:
    out->family = INET6;
    break;
  default:
    return EAI_FAMILY;
  }
  switch (hints->ai_socktype) {
  case 0:
    break;
  case SOCK_STREAM:
    out->type = SOCKET_STREAM;
    break;
  case SOCK_DGRAM:
    out->type = SOCKET_DGRAM;
    break;
  default:
    return EAI_SOCKTYPE;
  }
  return 0;
}

static bool is_numeric_host(const char* node) {
  uint8_t buf[16];
  return inet_pton(AF_INET, node, buf) == 1 || inet_pton(AF_INET6, node, buf) == 1;
}

static bool is_numeric_service(const char* service) {
  if (!*service) return false;
  for (const char* p = service; *p; ++p)
    if (*p < '0' || *p > '9') return false;
  return true;
}

/* With no node: the wildcard (AI_PASSIVE) or loopback address, as text. */
static const char* default_node(const struct addrinfo* hints) {
  bool passive = hints && (hints->ai_flags & AI_PASSIVE);
  bool ipv6 = hints && hints->ai_family == AF_INET6;
  return ipv6 ? (passive ? "::" : "::1") : (passive ? "0.0.0.0" : "127.0.0.1");
}

/* Asks the host, growing the buffer until every answer fits. */
static int resolve(const char* node, const char* service, __wasi_addr_info_hints_t* hints,
                   __wasi_addr_info_t** out, __wasi_size_t* count) {
  __wasi_size_t capacity = 8, total = 0;
  *out = NULL;
  for (;;) {
    __wasi_addr_info_t* info = malloc(capacity * sizeof *info);
    if (!info) return EAI_MEMORY;
    __wasi_errno_t error = __wasi_sock_addr_resolve(node, service, hints, info, capacity, &total);
    if (error != __WASI_ERRNO_SUCCESS) {
      free(info);
      return eai_from_errno(error);
    }
    if (total <= capacity) {
      *out = info;
      *count = total;
      return 0;
    }
    free(info);
    capacity = total;
  }
}

static struct answer* make_answers(const __wasi_addr_info_t* info, __wasi_size_t count) {
  struct answer* list = calloc(count, sizeof *list);
  if (!list) return NULL;
  for (__wasi_size_t i = 0; i < count; ++i) {
    struct addrinfo* ai = &list[i].ai;
    ai->ai_addr = (struct sockaddr*)&list[i].addr;
    ai->ai_addrlen = from_wasi_addr(&info[i].addr, &list[i].addr);
    ai->ai_family = info[i].addr.kind == IPv4 ? AF_INET : AF_INET6;
    bool stream = info[i].type == SOCKET_STREAM;
    ai->ai_socktype = stream ? SOCK_STREAM : SOCK_DGRAM;
    ai->ai_protocol = stream ? IPPROTO_TCP : IPPROTO_UDP;
    ai->ai_next = i + 1 < count ? &list[i + 1].ai : NULL;
  }
  return list;
}

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                struct addrinfo** res) {
  __wasi_addr_info_hints_t wasi_hints;
  if (!res || (!node && !service)) return EAI_NONAME;
  int rc = check_hints(hints, &wasi_hints);
  if (rc != 0) return rc;
  if (!node) node = default_node(hints);
  if (!service) service = "";
  if (hints && (hints->ai_flags & AI_NUMERICHOST) && !is_numeric_host(node)) return EAI_NONAME;
  if (hints && (hints->ai_flags & AI_NUMERICSERV) && *service && !is_numeric_service(service))
    return EAI_SERVICE;

  __wasi_addr_info_t* info;
  __wasi_size_t count;
  rc = resolve(node, service, &wasi_hints, &info, &count);
  if (rc != 0) return rc;
  if (count == 0) {
    free(info);
    return EAI_NONAME;
  }
  struct answer* list = make_answers(info, count);
  free(info);
  if (!list) return EAI_MEMORY;
  *res = &list[0].ai;
  return 0;
}

void freeaddrinfo(struct addrinfo* res) {
  free(res); /* the first answer is the start of the array */
}

const char* gai_strerror(int code) {
  switch (code) {
  case 0:
    return "Success";
  case EAI_BADFLAGS:
    return "Invalid flags";
  case EAI_NONAME:
    return "Name does not resolve";
  case EAI_AGAIN:
    return "Try again";
  case EAI_FAIL:
    return "Non-recoverable error";
  case EAI_FAMILY:
    return "Unrecognized address family or invalid length";
  case EAI_SOCKTYPE:
    return "Unrecognized socket type";
  case EAI_SERVICE:
    return "Unrecognized service";
  case EAI_MEMORY:
    return "Out of memory";
  case EAI_SYSTEM:
    return "System error";
  case EAI_OVERFLOW:
    return "Overflow";
  default:
    return "Unknown error";
  }
}
