// A TCP echo server on the socket tern preopens with --listen: finds it,
// serves argv[1] connections one after another (each: echo until the
// client shuts down its side, then shut down ours), and reports.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

// The first fd from 3 on that is a socket.
static int find_listener(void) {
  for (int fd = 3; fd < 64; ++fd) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) return fd;
  }
  return -1;
}

static long serve(int conn) {
  char buf[1024];
  long total = 0;
  for (;;) {
    ssize_t n = recv(conn, buf, sizeof buf, 0);
    if (n < 0) {
      perror("recv");
      return -1;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = send(conn, buf + done, (size_t)(n - done), 0);
      if (w < 0) {
        perror("send");
        return -1;
      }
      done += w;
    }
    total += n;
  }
  if (shutdown(conn, SHUT_WR) != 0) perror("shutdown");
  close(conn);
  return total;
}

int main(int argc, char** argv) {
  int connections = argc > 1 ? atoi(argv[1]) : 1;
  int listener = find_listener();
  if (listener < 0) {
    fprintf(stderr, "no listening socket (run with --listen ADDR:PORT)\n");
    return 2;
  }
  printf("listening on fd %d\n", listener);
  fflush(stdout);
  for (int i = 0; i < connections; ++i) {
    int conn = accept(listener, NULL, NULL);
    if (conn < 0) {
      perror("accept");
      return 1;
    }
    long n = serve(conn);
    if (n < 0) return 1;
    printf("connection %d: echoed %ld bytes\n", i + 1, n);
    fflush(stdout);
  }
  return 0;
}
