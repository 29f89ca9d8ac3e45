// A TCP client on the socket extension: resolves HOST PORT with
// getaddrinfo, connects, sends a greeting line and SIZE bytes of lowercase
// text, shuts down its side and reads the peer's answer, which must be the
// same bytes upper-cased (the test's peer does that). Reports each step.
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi_socket_ext.h>

static char* make_payload(size_t size) {
  char* data = malloc(size + 1);
  for (size_t i = 0; i < size; ++i) data[i] = (char)('a' + (i * 7 + i / 13) % 26);
  return data;
}

static int send_all(int fd, const char* data, size_t size) {
  for (size_t done = 0; done < size;) {
    ssize_t n = send(fd, data + done, size - done, 0);
    if (n < 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

// The peer's address as text ("127.0.0.1:8080", "[::1]:8080").
static void format_address(const struct sockaddr* sa, char* out, size_t size) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in* in4 = (const struct sockaddr_in*)sa;
    inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip);
    snprintf(out, size, "%s:%u", ip, ntohs(in4->sin_port));
  } else {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    snprintf(out, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
  }
}

static int connect_to(const char* host, const char* port) {
  struct addrinfo hints = {0}, *list;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &list);
  if (rc != 0) {
    printf("getaddrinfo: %s\n", gai_strerror(rc));
    return -1;
  }
  int fd = socket(list->ai_family, SOCK_STREAM, 0);
  if (fd < 0) {
    printf("socket: %s\n", strerror(errno));
  } else if (connect(fd, list->ai_addr, list->ai_addrlen) != 0) {
    printf("connect: %s\n", strerror(errno));
    close(fd);
    fd = -1;
  }
  freeaddrinfo(list);
  return fd;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: tcp_client HOST PORT [SIZE]\n");
    return 2;
  }
  size_t size = argc > 3 ? (size_t)atol(argv[3]) : 1000;
  int fd = connect_to(argv[1], argv[2]);
  if (fd < 0) return 1;
  struct sockaddr_storage peer;
  socklen_t len = sizeof peer;
  char text[80];
  if (getpeername(fd, (struct sockaddr*)&peer, &len) != 0) {
    printf("getpeername: %s\n", strerror(errno));
    return 1;
  }
  format_address((struct sockaddr*)&peer, text, sizeof text);
  printf("connected to %s\n", text);

  const char greeting[] = "hello from wasm\n";
  char* payload = make_payload(size);
  if (send_all(fd, greeting, sizeof greeting - 1) != 0 || send_all(fd, payload, size) != 0 ||
      shutdown(fd, SHUT_WR) != 0) {
    printf("send: %s\n", strerror(errno));
    return 1;
  }
  size_t expected = sizeof greeting - 1 + size, got = 0;
  char* reply = malloc(expected + 1);
  for (;;) {
    ssize_t n = recv(fd, reply + got, expected + 1 - got, 0);
    if (n < 0) {
      printf("recv: %s\n", strerror(errno));
      return 1;
    }
    if (n == 0 || got + (size_t)n > expected) {
      got += (size_t)n;
      break;
    }
    got += (size_t)n;
  }
  int same = got == expected && memcmp(reply, "HELLO FROM WASM\n", sizeof greeting - 1) == 0;
  for (size_t i = 0; same && i < size; ++i)
    same = reply[sizeof greeting - 1 + i] == payload[i] - 'a' + 'A';
  printf("received %zu bytes: %s\n", got, same ? "upper-cased echo" : "WRONG");
  close(fd);
  return same ? 0 : 1;
}
