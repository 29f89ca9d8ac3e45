// UDP on the socket extension.
//   udp_echo server ADDR COUNT: binds ADDR (any port), prints it, and
//     answers COUNT datagrams with their bytes reversed, to their sender.
//   udp_echo client ADDR PORT: sends "ping 1".."ping 3" with sendto and
//     checks the answers ("pong N") and their source with recvfrom; then
//     connects the socket and does the same with send/recv.
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi_socket_ext.h>

static socklen_t make_address(const char* ip, int port, struct sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':')) {
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, ip, &in6->sin6_addr);
    return sizeof *in6;
  }
  struct sockaddr_in* in4 = (struct sockaddr_in*)ss;
  in4->sin_family = AF_INET;
  in4->sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, ip, &in4->sin_addr);
  return sizeof *in4;
}

static void describe(const struct sockaddr_storage* ss, char* out, size_t size) {
  char ip[INET6_ADDRSTRLEN];
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* in4 = (const struct sockaddr_in*)ss;
    snprintf(out, size, "%s:%u", inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip),
             ntohs(in4->sin_port));
  } else {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)ss;
    snprintf(out, size, "[%s]:%u", inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip),
             ntohs(in6->sin6_port));
  }
}

static int serve(const char* ip, int count) {
  struct sockaddr_storage ss;
  socklen_t len = make_address(ip, 0, &ss);
  int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, (struct sockaddr*)&ss, len) != 0) {
    printf("bind: %s\n", strerror(errno));
    return 1;
  }
  len = sizeof ss;
  getsockname(fd, (struct sockaddr*)&ss, &len);
  char text[80];
  describe(&ss, text, sizeof text);
  printf("bound to %s\n", text);
  fflush(stdout);
  for (int i = 1; i <= count; ++i) {
    char buf[2048], reply[2048];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr*)&from, &from_len);
    if (n < 0) {
      printf("recvfrom: %s\n", strerror(errno));
      return 1;
    }
    for (ssize_t k = 0; k < n; ++k) reply[k] = buf[n - 1 - k];
    if (sendto(fd, reply, (size_t)n, 0, (struct sockaddr*)&from, from_len) != n) {
      printf("sendto: %s\n", strerror(errno));
      return 1;
    }
    printf("datagram %d: %zd bytes, answered\n", i, n);
    fflush(stdout);
  }
  return 0;
}

// Receives one answer and checks it is "pong N" from `server`.
static int check_answer(int fd, int n, const char* server) {
  char buf[256], text[80];
  struct sockaddr_storage from;
  socklen_t from_len = sizeof from;
  ssize_t got = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr*)&from, &from_len);
  if (got < 0) {
    printf("recvfrom: %s\n", strerror(errno));
    return 1;
  }
  buf[got] = 0;
  describe(&from, text, sizeof text);
  char want[32];
  snprintf(want, sizeof want, "pong %d", n);
  printf("answer %d: %s from %s\n", n, strcmp(buf, want) == 0 ? "ok" : buf,
         strcmp(text, server) == 0 ? "the server" : text);
  return 0;
}

static int client(const char* ip, int port) {
  struct sockaddr_storage server;
  socklen_t len = make_address(ip, port, &server);
  char server_text[80];
  describe(&server, server_text, sizeof server_text);
  int fd = socket(server.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) return 1;
  for (int n = 1; n <= 3; ++n) {
    char msg[32];
    int size = snprintf(msg, sizeof msg, "ping %d", n);
    if (sendto(fd, msg, (size_t)size, 0, (struct sockaddr*)&server, len) != size) {
      printf("sendto: %s\n", strerror(errno));
      return 1;
    }
    if (check_answer(fd, n, server_text) != 0) return 1;
  }
  if (connect(fd, (struct sockaddr*)&server, len) != 0) {
    printf("connect: %s\n", strerror(errno));
    return 1;
  }
  char buf[64];
  if (send(fd, "ping 4", 6, 0) != 6) return 1;
  ssize_t got = recv(fd, buf, sizeof buf - 1, 0);
  if (got < 0) return 1;
  buf[got] = 0;
  printf("connected answer: %s\n", buf);
  close(fd);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "server") == 0) return serve(argv[2], atoi(argv[3]));
  if (argc == 4 && strcmp(argv[1], "client") == 0) return client(argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: udp_echo server ADDR COUNT | client ADDR PORT\n");
  return 2;
}
