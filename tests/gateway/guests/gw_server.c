// A poll()-based server for the gateway tests (gw_protocol.h): it accepts
// on its listening socket (fd 3, from --listen) and serves any number of
// connections at once, each pipelining requests, with non-blocking reads
// and writes (gw_conn.h). It checks every request body and closes a
// connection whose bytes are wrong (the client then sees it). It runs until
// killed. `--sndbuf N`: each accepted connection's SO_SNDBUF is N, so that
// a big reply cannot all sit in the kernel and the program's writes block
// in the middle of it.
#include "gw_conn.h"

#include <fcntl.h>

#define MAX_CONNS 512

static struct conn* conns[MAX_CONNS];
static int nconns;
static int sndbuf; // --sndbuf, 0: the default

static void drop(int i) {
  conn_free(conns[i]);
  conns[i] = conns[--nconns];
}

static void accept_all(int listener) {
  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) return;
    if (nconns == MAX_CONNS) {
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
      perror("gw_server: setsockopt SO_SNDBUF");
    struct conn* c = calloc(1, sizeof *c);
    c->fd = fd;
    conns[nconns++] = c;
  }
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--sndbuf") == 0) sndbuf = atoi(argv[2]);
  const int listener = 3;
  fcntl(listener, F_SETFL, O_NONBLOCK);
  static struct pollfd fds[MAX_CONNS + 1];
  for (;;) {
    fds[0] = (struct pollfd){listener, POLLIN, 0};
    for (int i = 0; i < nconns; ++i)
      fds[i + 1] = (struct pollfd){conns[i]->fd, conn_events(conns[i]), 0};
    const int n = nconns;
    if (poll(fds, (nfds_t)n + 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("poll");
      return 1;
    }
    // Connections first (their slots shift when one closes), newest last.
    for (int i = n - 1; i >= 0; --i)
      if (fds[i + 1].revents && serve(conns[i], fds[i + 1].revents) != 0) drop(i);
    if (fds[0].revents) accept_all(listener);
  }
}
