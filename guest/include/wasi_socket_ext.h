/*
 * The socket extension for wasm32-wasi C programs, for tern (and WAMR, whose
 * lib-socket defines the same ABI and the same header name, so programs
 * written against WAMR's wasi_socket_ext.h compile unchanged).
 *
 * It gives Debian's wasi-libc, which only has accept/recv/send/shutdown,
 * the rest of the BSD socket API: socket, bind, listen, connect, accept,
 * getsockname, getpeername, setsockopt, getsockopt, sendto, recvfrom,
 * sendmsg, recvmsg, getaddrinfo, freeaddrinfo, gai_strerror. Build the
 * program with guest/src/wasi_socket_ext.c and -I guest/include.
 *
 * Below them, the host calls, imported from "wasi_snapshot_preview1", and
 * the structures they exchange through linear memory. Every multi-byte
 * field is little-endian; ports are plain numbers, not network order.
 */
#ifndef TERN_WASI_SOCKET_EXT_H
#define TERN_WASI_SOCKET_EXT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <wasi/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- The ABI's types ---------------------------------------------------- */

typedef enum {
  SOCKET_ANY = -1, /* only in sock_addr_resolve hints */
  SOCKET_DGRAM = 0,
  SOCKET_STREAM = 1,
} __wasi_sock_type_t;

typedef uint16_t __wasi_ip_port_t;

typedef enum { IPv4 = 0, IPv6 = 1 } __wasi_addr_type_t;

/* 127.0.0.1 is {127, 0, 0, 1}. */
typedef struct __wasi_addr_ip4_t {
  uint8_t n0, n1, n2, n3;
} __wasi_addr_ip4_t;

typedef struct __wasi_addr_ip4_port_t {
  __wasi_addr_ip4_t addr;
  __wasi_ip_port_t port;
} __wasi_addr_ip4_port_t;

/* The eight 16-bit groups as numbers: fe80::1 is {0xfe80, 0, ..., 0x1}. */
typedef struct __wasi_addr_ip6_t {
  uint16_t n0, n1, n2, n3, h0, h1, h2, h3;
} __wasi_addr_ip6_t;

typedef struct __wasi_addr_ip6_port_t {
  __wasi_addr_ip6_t addr;
  __wasi_ip_port_t port;
} __wasi_addr_ip6_port_t;

typedef struct __wasi_addr_ip_t {
  __wasi_addr_type_t kind;
  union {
    __wasi_addr_ip4_t ip4;
    __wasi_addr_ip6_t ip6;
  } addr;
} __wasi_addr_ip_t;

typedef struct __wasi_addr_t {
  __wasi_addr_type_t kind;
  union {
    __wasi_addr_ip4_port_t ip4;
    __wasi_addr_ip6_port_t ip6;
  } addr;
} __wasi_addr_t;

typedef enum { INET4 = 0, INET6 = 1, INET_UNSPEC = 2 } __wasi_address_family_t;

typedef struct __wasi_addr_info_t {
  __wasi_addr_t addr;
  __wasi_sock_type_t type;
} __wasi_addr_info_t;

typedef struct __wasi_addr_info_hints_t {
  __wasi_sock_type_t type;
  __wasi_address_family_t family;
  uint8_t hints_enabled; /* 0: type and family are ignored */
} __wasi_addr_info_hints_t;

_Static_assert(sizeof(__wasi_addr_t) == 24, "__wasi_addr_t layout");
_Static_assert(sizeof(__wasi_addr_ip_t) == 20, "__wasi_addr_ip_t layout");
_Static_assert(sizeof(__wasi_addr_info_t) == 28, "__wasi_addr_info_t layout");
_Static_assert(sizeof(__wasi_addr_info_hints_t) == 12, "__wasi_addr_info_hints_t layout");

/* --- What wasi-libc leaves out of <sys/socket.h>, <netdb.h> ------------- */

#ifdef __wasi__
#ifndef SO_REUSEADDR
#define SO_REUSEADDR 2
#endif
#ifndef SO_ERROR
#define SO_ERROR 4
#endif
#ifndef SO_BROADCAST
#define SO_BROADCAST 6
#endif
#ifndef SO_SNDBUF
#define SO_SNDBUF 7
#endif
#ifndef SO_RCVBUF
#define SO_RCVBUF 8
#endif
#ifndef SO_KEEPALIVE
#define SO_KEEPALIVE 9
#endif
#ifndef SO_LINGER
#define SO_LINGER 13
#endif
#ifndef SO_REUSEPORT
#define SO_REUSEPORT 15
#endif
#ifndef SO_RCVTIMEO
#define SO_RCVTIMEO 20
#endif
#ifndef SO_SNDTIMEO
#define SO_SNDTIMEO 21
#endif

#ifndef TCP_NODELAY
#define TCP_NODELAY 1
#endif
#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE 4
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 5
#endif
#ifndef TCP_QUICKACK
#define TCP_QUICKACK 12
#endif
#ifndef TCP_FASTOPEN_CONNECT
#define TCP_FASTOPEN_CONNECT 30
#endif

#ifndef IP_TTL
#define IP_TTL 2
#endif
#ifndef IP_MULTICAST_TTL
#define IP_MULTICAST_TTL 33
#endif
#ifndef IP_MULTICAST_LOOP
#define IP_MULTICAST_LOOP 34
#endif
#ifndef IP_ADD_MEMBERSHIP
#define IP_ADD_MEMBERSHIP 35
#endif
#ifndef IP_DROP_MEMBERSHIP
#define IP_DROP_MEMBERSHIP 36
#endif
#ifndef IPV6_MULTICAST_LOOP
#define IPV6_MULTICAST_LOOP 19
#endif
#ifndef IPV6_JOIN_GROUP
#define IPV6_JOIN_GROUP 20
#endif
#ifndef IPV6_LEAVE_GROUP
#define IPV6_LEAVE_GROUP 21
#endif
#ifndef IPV6_V6ONLY
#define IPV6_V6ONLY 26
#endif

/* getaddrinfo's flags and errors, with musl's (wasi-libc's) values. */
#define AI_PASSIVE 0x01
#define AI_CANONNAME 0x02
#define AI_NUMERICHOST 0x04
#define AI_NUMERICSERV 0x400

#define EAI_BADFLAGS -1
#define EAI_NONAME -2
#define EAI_AGAIN -3
#define EAI_FAIL -4
#define EAI_FAMILY -6
#define EAI_SOCKTYPE -7
#define EAI_SERVICE -8
#define EAI_MEMORY -10
#define EAI_SYSTEM -11 /* errno says what */
#define EAI_OVERFLOW -12

struct addrinfo {
  int ai_flags;
  int ai_family;
  int ai_socktype;
  int ai_protocol;
  socklen_t ai_addrlen;
  struct sockaddr* ai_addr;
  char* ai_canonname;
  struct addrinfo* ai_next;
};

int socket(int domain, int type, int protocol);
int bind(int sockfd, const struct sockaddr* addr, socklen_t addrlen);
int listen(int sockfd, int backlog);
int connect(int sockfd, const struct sockaddr* addr, socklen_t addrlen);
/* accept and accept4 keep wasi-libc's declarations; this library fills in
 * their address (wasi-libc's leave it empty). */
int getsockname(int sockfd, struct sockaddr* addr, socklen_t* addrlen);
int getpeername(int sockfd, struct sockaddr* addr, socklen_t* addrlen);
int setsockopt(int sockfd, int level, int optname, const void* optval, socklen_t optlen);
/* getsockopt keeps wasi-libc's declaration. */
ssize_t sendto(int sockfd, const void* buf, size_t len, int flags, const struct sockaddr* dest_addr,
               socklen_t addrlen);
ssize_t recvfrom(int sockfd, void* buf, size_t len, int flags, struct sockaddr* src_addr,
                 socklen_t* addrlen);
ssize_t sendmsg(int sockfd, const struct msghdr* msg, int flags);
ssize_t recvmsg(int sockfd, struct msghdr* msg, int flags);
int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                struct addrinfo** res);
void freeaddrinfo(struct addrinfo* res);
const char* gai_strerror(int code);
#endif /* __wasi__ */

/* --- The host calls ----------------------------------------------------- */

#define TERN_SOCK_IMPORT(name)                                                                     \
  __attribute__((__import_module__("wasi_snapshot_preview1"), __import_name__(#name)))

int32_t __imported_wasi_snapshot_preview1_sock_open(int32_t, int32_t, int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_open);
int32_t __imported_wasi_snapshot_preview1_sock_close(int32_t) TERN_SOCK_IMPORT(sock_close);
int32_t __imported_wasi_snapshot_preview1_sock_bind(int32_t, int32_t) TERN_SOCK_IMPORT(sock_bind);
int32_t __imported_wasi_snapshot_preview1_sock_listen(int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_listen);
int32_t __imported_wasi_snapshot_preview1_sock_connect(int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_connect);
int32_t __imported_wasi_snapshot_preview1_sock_addr_local(int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_addr_local);
int32_t __imported_wasi_snapshot_preview1_sock_addr_remote(int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_addr_remote);
int32_t __imported_wasi_snapshot_preview1_sock_addr_resolve(int32_t, int32_t, int32_t, int32_t,
                                                            int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_addr_resolve);
int32_t __imported_wasi_snapshot_preview1_sock_send_to(int32_t, int32_t, int32_t, int32_t, int32_t,
                                                       int32_t) TERN_SOCK_IMPORT(sock_send_to);
int32_t __imported_wasi_snapshot_preview1_sock_recv_from(int32_t, int32_t, int32_t, int32_t,
                                                         int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_recv_from);

/* sock_open: a new socket. `poolfd` is not used (pass -1). */
static inline __wasi_errno_t __wasi_sock_open(__wasi_fd_t poolfd, __wasi_address_family_t af,
                                              __wasi_sock_type_t socktype, __wasi_fd_t* sockfd) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_open(
      (int32_t)poolfd, (int32_t)af, (int32_t)socktype, (int32_t)sockfd);
}

/* sock_close: the same as fd_close. */
static inline __wasi_errno_t __wasi_sock_close(__wasi_fd_t fd) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_close((int32_t)fd);
}

static inline __wasi_errno_t __wasi_sock_bind(__wasi_fd_t fd, __wasi_addr_t* addr) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_bind((int32_t)fd, (int32_t)addr);
}

static inline __wasi_errno_t __wasi_sock_listen(__wasi_fd_t fd, __wasi_size_t backlog) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_listen((int32_t)fd,
                                                                       (int32_t)backlog);
}

static inline __wasi_errno_t __wasi_sock_connect(__wasi_fd_t fd, __wasi_addr_t* addr) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_connect((int32_t)fd, (int32_t)addr);
}

static inline __wasi_errno_t __wasi_sock_addr_local(__wasi_fd_t fd, __wasi_addr_t* addr) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_addr_local((int32_t)fd,
                                                                           (int32_t)addr);
}

static inline __wasi_errno_t __wasi_sock_addr_remote(__wasi_fd_t fd, __wasi_addr_t* addr) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_addr_remote((int32_t)fd,
                                                                            (int32_t)addr);
}

/* Resolves host (and service, "" for none) into up to addr_info_size
 * entries of addr_info; *max_info_size is how many there are in all. */
static inline __wasi_errno_t __wasi_sock_addr_resolve(const char* host, const char* service,
                                                      __wasi_addr_info_hints_t* hints,
                                                      __wasi_addr_info_t* addr_info,
                                                      __wasi_size_t addr_info_size,
                                                      __wasi_size_t* max_info_size) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_addr_resolve(
      (int32_t)host, (int32_t)service, (int32_t)hints, (int32_t)addr_info, (int32_t)addr_info_size,
      (int32_t)max_info_size);
}

static inline __wasi_errno_t __wasi_sock_send_to(__wasi_fd_t fd, const __wasi_ciovec_t* si_data,
                                                 uint32_t si_data_len, __wasi_siflags_t si_flags,
                                                 const __wasi_addr_t* dest_addr,
                                                 uint32_t* so_data_len) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_send_to(
      (int32_t)fd, (int32_t)si_data, (int32_t)si_data_len, (int32_t)si_flags, (int32_t)dest_addr,
      (int32_t)so_data_len);
}

static inline __wasi_errno_t __wasi_sock_recv_from(__wasi_fd_t fd, __wasi_ciovec_t* ri_data,
                                                   uint32_t ri_data_len, __wasi_riflags_t ri_flags,
                                                   __wasi_addr_t* src_addr, uint32_t* ro_data_len) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_recv_from(
      (int32_t)fd, (int32_t)ri_data, (int32_t)ri_data_len, (int32_t)ri_flags, (int32_t)src_addr,
      (int32_t)ro_data_len);
}

/* Options: a setter taking the value and a getter writing it. */
#define TERN_SOCK_OPTION(name, set_type, get_type)                                                 \
  int32_t __imported_wasi_snapshot_preview1_sock_set_##name(int32_t, set_type)                     \
      TERN_SOCK_IMPORT(sock_set_##name);                                                           \
  int32_t __imported_wasi_snapshot_preview1_sock_get_##name(int32_t, int32_t)                      \
      TERN_SOCK_IMPORT(sock_get_##name);                                                           \
  static inline __wasi_errno_t __wasi_sock_set_##name(__wasi_fd_t fd, get_type value) {            \
    return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_set_##name((int32_t)fd,          \
                                                                             (set_type)value);     \
  }                                                                                                \
  static inline __wasi_errno_t __wasi_sock_get_##name(__wasi_fd_t fd, get_type* value) {           \
    return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_get_##name((int32_t)fd,          \
                                                                             (int32_t)value);      \
  }

TERN_SOCK_OPTION(reuse_addr, int32_t, bool)
TERN_SOCK_OPTION(reuse_port, int32_t, bool)
TERN_SOCK_OPTION(keep_alive, int32_t, bool)
TERN_SOCK_OPTION(broadcast, int32_t, bool)
TERN_SOCK_OPTION(tcp_no_delay, int32_t, bool)
TERN_SOCK_OPTION(tcp_quick_ack, int32_t, bool)
TERN_SOCK_OPTION(tcp_fastopen_connect, int32_t, bool)
TERN_SOCK_OPTION(ipv6_only, int32_t, bool)
TERN_SOCK_OPTION(recv_buf_size, int32_t, __wasi_size_t)
TERN_SOCK_OPTION(send_buf_size, int32_t, __wasi_size_t)
TERN_SOCK_OPTION(recv_timeout, int64_t, uint64_t) /* microseconds; 0: none */
TERN_SOCK_OPTION(send_timeout, int64_t, uint64_t)
TERN_SOCK_OPTION(tcp_keep_idle, int32_t, uint32_t) /* seconds */
TERN_SOCK_OPTION(tcp_keep_intvl, int32_t, uint32_t)
TERN_SOCK_OPTION(ip_ttl, int32_t, uint8_t)
TERN_SOCK_OPTION(ip_multicast_ttl, int32_t, uint8_t)
#undef TERN_SOCK_OPTION

int32_t __imported_wasi_snapshot_preview1_sock_set_linger(int32_t, int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_set_linger);
int32_t __imported_wasi_snapshot_preview1_sock_get_linger(int32_t, int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_get_linger);
int32_t __imported_wasi_snapshot_preview1_sock_set_ip_multicast_loop(int32_t, int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_set_ip_multicast_loop);
int32_t __imported_wasi_snapshot_preview1_sock_get_ip_multicast_loop(int32_t, int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_get_ip_multicast_loop);
int32_t __imported_wasi_snapshot_preview1_sock_set_ip_add_membership(int32_t, int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_set_ip_add_membership);
int32_t __imported_wasi_snapshot_preview1_sock_set_ip_drop_membership(int32_t, int32_t, int32_t)
    TERN_SOCK_IMPORT(sock_set_ip_drop_membership);

static inline __wasi_errno_t __wasi_sock_set_linger(__wasi_fd_t fd, bool is_enabled, int linger_s) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_set_linger(
      (int32_t)fd, (int32_t)is_enabled, (int32_t)linger_s);
}

static inline __wasi_errno_t __wasi_sock_get_linger(__wasi_fd_t fd, bool* is_enabled,
                                                    int* linger_s) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_get_linger(
      (int32_t)fd, (int32_t)is_enabled, (int32_t)linger_s);
}

static inline __wasi_errno_t __wasi_sock_set_ip_multicast_loop(__wasi_fd_t fd, bool ipv6,
                                                               bool option) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_set_ip_multicast_loop(
      (int32_t)fd, (int32_t)ipv6, (int32_t)option);
}

static inline __wasi_errno_t __wasi_sock_get_ip_multicast_loop(__wasi_fd_t fd, bool ipv6,
                                                               bool* option) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_get_ip_multicast_loop(
      (int32_t)fd, (int32_t)ipv6, (int32_t)option);
}

/* imr_interface: IPv4, the interface's address as its s_addr; IPv6, its
 * index. */
static inline __wasi_errno_t __wasi_sock_set_ip_add_membership(__wasi_fd_t fd,
                                                               __wasi_addr_ip_t* imr_multiaddr,
                                                               uint32_t imr_interface) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_set_ip_add_membership(
      (int32_t)fd, (int32_t)imr_multiaddr, (int32_t)imr_interface);
}

static inline __wasi_errno_t __wasi_sock_set_ip_drop_membership(__wasi_fd_t fd,
                                                                __wasi_addr_ip_t* imr_multiaddr,
                                                                uint32_t imr_interface) {
  return (__wasi_errno_t)__imported_wasi_snapshot_preview1_sock_set_ip_drop_membership(
      (int32_t)fd, (int32_t)imr_multiaddr, (int32_t)imr_interface);
}

#undef TERN_SOCK_IMPORT

#ifdef __cplusplus
}
#endif

#endif /* TERN_WASI_SOCKET_EXT_H */
