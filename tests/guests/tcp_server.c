// A TCP server that opens its own listening socket with the socket
// extension (socket, setsockopt, bind, listen: no --listen), prints the
// address it got, and echoes COUNT connections one after another, each
// until the client shuts down its side.
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi_socket_ext.h>

static long echo(int conn) {
  char buf[4096];
  long total = 0;
  for (;;) {
    ssize_t n = recv(conn, buf, sizeof buf, 0);
    if (n < 0) return -1;
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = send(conn, buf + done, (size_t)(n - done), 0);
      if (w < 0) return -1;
      done += w;
    }
    total += n;
  }
  shutdown(conn, SHUT_WR);
  return total;
}

// A listening socket on ADDR:PORT (IPv4 or IPv6 numeric), or -1.
static int open_listener(const char* addr, int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
  if (family == AF_INET) {
    struct sockaddr_in* in4 = (struct sockaddr_in*)&ss;
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, addr, &in4->sin_addr);
    len = sizeof *in4;
  } else {
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, addr, &in6->sin6_addr);
    len = sizeof *in6;
  }
  int fd = socket(family, SOCK_STREAM, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr*)&ss, len) != 0 || listen(fd, 16) != 0) {
    printf("listen on %s:%d: %s\n", addr, port, strerror(errno));
    return -1;
  }
  return fd;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tcp_server ADDR PORT COUNT\n");
    return 2;
  }
  int listener = open_listener(argv[1], atoi(argv[2]));
  if (listener < 0) return 1;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char ip[INET6_ADDRSTRLEN];
  getsockname(listener, (struct sockaddr*)&ss, &len);
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in* in4 = (struct sockaddr_in*)&ss;
    printf("listening on %s:%u\n", inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip),
           ntohs(in4->sin_port));
  } else {
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)&ss;
    printf("listening on [%s]:%u\n", inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip),
           ntohs(in6->sin6_port));
  }
  fflush(stdout);
  int count = atoi(argv[3]);
  for (int i = 1; i <= count; ++i) {
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int conn = accept(listener, (struct sockaddr*)&peer, &peer_len);
    if (conn < 0) {
      printf("accept: %s\n", strerror(errno));
      return 1;
    }
    const void* peer_ip = peer.ss_family == AF_INET
                              ? (const void*)&((struct sockaddr_in*)&peer)->sin_addr
                              : (const void*)&((struct sockaddr_in6*)&peer)->sin6_addr;
    inet_ntop(peer.ss_family, peer_ip, ip, sizeof ip);
    long n = echo(conn);
    if (n < 0) {
      printf("echo: %s\n", strerror(errno));
      return 1;
    }
    close(conn);
    printf("connection %d from %s: echoed %ld bytes\n", i, ip, n);
    fflush(stdout);
  }
  close(listener);
  return 0;
}
