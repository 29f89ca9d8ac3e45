// A program that is itself a client (for outgoing connections through the
// gateway): it connects to ADDR PORT with the socket extension and makes
// COUNT requests of the gateway test protocol (gw_protocol.h) one after
// another, pausing a little between them, checking every reply; then it
// asks for the server's byte counts and compares them with its own.
// Prints "done N replies, counts agree" and exits 0 when all is well.
#include "gw_protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi_socket_ext.h>

static int fd;
static unsigned long long sent, received;

static int send_all(const void* p, size_t n) {
  const char* c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, 0);
    if (w <= 0) return -1;
    c += w, n -= (size_t)w, sent += (unsigned long long)w;
  }
  return 0;
}

static int recv_exact(void* p, size_t n) {
  char* c = p;
  while (n > 0) {
    ssize_t r = recv(fd, c, n, 0);
    if (r <= 0) return -1;
    c += r, n -= (size_t)r, received += (unsigned long long)r;
  }
  return 0;
}

static int recv_line(char* out, size_t size) {
  size_t len = 0;
  while (len + 1 < size) {
    if (recv_exact(out + len, 1) != 0) return -1;
    if (out[len] == '\n') break;
    ++len;
  }
  out[len] = 0;
  return 0;
}

static void die(const char* what) {
  printf("gw_client: %s (%s)\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: gw_client ADDR PORT COUNT\n");
    return 2;
  }
  struct sockaddr_in in4;
  memset(&in4, 0, sizeof in4);
  in4.sin_family = AF_INET;
  in4.sin_port = htons((uint16_t)atoi(argv[2]));
  inet_pton(AF_INET, argv[1], &in4.sin_addr);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&in4, sizeof in4) != 0) die("connect");
  const int count = atoi(argv[3]);
  static unsigned char data[70000];
  for (int seq = 1; seq <= count; ++seq) {
    const size_t body = (size_t)(seq * 37 % 3000), size = (size_t)(seq * 101 % 65000);
    char head[80];
    int n = snprintf(head, sizeof head, "REQ %d %zu %zu\n", seq, size, body);
    for (size_t i = 0; i < body; ++i) data[i] = gw_body_byte((uint64_t)seq, i);
    if (send_all(head, (size_t)n) != 0 || send_all(data, body) != 0) die("send");
    char line[80], want[80];
    if (recv_line(line, sizeof line) != 0) die("recv");
    snprintf(want, sizeof want, "REP %d %zu", seq, size);
    if (strcmp(line, want) != 0) {
      printf("gw_client: got '%s', expected '%s'\n", line, want);
      return 1;
    }
    if (recv_exact(data, size) != 0) die("recv");
    for (size_t i = 0; i < size; ++i)
      if (data[i] != gw_reply_byte((uint64_t)seq, i)) {
        printf("gw_client: reply %d: byte %zu is wrong\n", seq, i);
        return 1;
      }
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  char line[120];
  int n = snprintf(line, sizeof line, "STAT %d\n", count + 1);
  if (send_all(line, (size_t)n) != 0 || recv_line(line, sizeof line) != 0) die("stat");
  unsigned long long server_received, server_sent;
  int seq;
  const unsigned long long before = received - strlen(line) - 1;
  if (sscanf(line, "STAT %d %llu %llu", &seq, &server_received, &server_sent) != 3 ||
      server_received != sent || server_sent != before) {
    printf("gw_client: counts differ: '%s', sent %llu, received %llu\n", line, sent, before);
    return 1;
  }
  printf("done %d replies, counts agree\n", count);
  return 0;
}
