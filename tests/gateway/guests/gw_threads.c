// A threaded server for the gateway tests (gw_protocol.h, POSIX threads
// from guest/): the main thread blocks in accept() on its listening socket
// (fd 3, from --listen) and hands each connection to a worker thread in
// turn; each worker serves its connections with poll() and non-blocking
// reads and writes (gw_conn.h), as gw_server does with all of them. So a
// checkpoint finds the main thread in sock_accept and the workers in
// poll_oneoff (or in a lock's wait, or running). A worker's poll times out
// every 50 ms to take the connections handed to it meanwhile.
// With --thread-per-connection, each connection has a thread of its own
// instead, which serves it with blocking reads and writes: a checkpoint
// finds it in fd_read waiting for a request (or the rest of one), or in
// fd_write in the middle of a reply the client is slow to take.
//
//   gw_threads [--workers N | --thread-per-connection] [--sndbuf N]
//
// --workers: how many workers (default 4); --sndbuf N: each accepted
// connection's SO_SNDBUF (see gw_server.c).
#include "gw_conn.h"

#include <fcntl.h>
#include <pthread.h>

#define MAX_WORKERS 16
#define MAX_CONNS 512 // per worker

struct worker {
  pthread_t thread;
  pthread_mutex_t lock;
  struct conn* handed[MAX_CONNS]; // by the main thread, under `lock`
  int nhanded;
  struct conn* conns[MAX_CONNS]; // the worker's own
  int nconns;
  struct pollfd fds[MAX_CONNS];
  int live; // connections handed and not closed yet (atomic: both threads count)
};

static struct worker workers[MAX_WORKERS];

// Takes the connections handed over.
static void take_handed(struct worker* w) {
  pthread_mutex_lock(&w->lock);
  for (int i = 0; i < w->nhanded; ++i) w->conns[w->nconns++] = w->handed[i];
  w->nhanded = 0;
  pthread_mutex_unlock(&w->lock);
}

static void* work(void* arg) {
  struct worker* w = arg;
  for (;;) {
    take_handed(w);
    for (int i = 0; i < w->nconns; ++i)
      w->fds[i] = (struct pollfd){w->conns[i]->fd, conn_events(w->conns[i]), 0};
    const int n = w->nconns;
    if (poll(w->fds, (nfds_t)n, 50) <= 0) continue; // a timeout (or EINTR)
    // Newest first: a slot is refilled from the end when one closes.
    for (int i = n - 1; i >= 0; --i) {
      if (w->fds[i].revents && serve(w->conns[i], w->fds[i].revents) != 0) {
        conn_free(w->conns[i]);
        w->conns[i] = w->conns[--w->nconns];
        __atomic_fetch_sub(&w->live, 1, __ATOMIC_SEQ_CST);
      }
    }
  }
  return NULL;
}

static void* serve_one(void* arg) {
  serve_blocking(arg);
  conn_free(arg);
  return NULL;
}

// --thread-per-connection: a thread for each connection accepted.
static int thread_per_connection(int listener, int sndbuf) {
  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) continue;
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
      perror("gw_threads: setsockopt SO_SNDBUF");
    struct conn* c = calloc(1, sizeof *c);
    c->fd = fd;
    pthread_t thread; // never joined: it ends with its connection
    if (pthread_create(&thread, NULL, serve_one, c) != 0) {
      fprintf(stderr, "gw_threads: pthread_create failed\n");
      conn_free(c);
    }
  }
}

int main(int argc, char** argv) {
  int nworkers = 4, sndbuf = 0, per_connection = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--thread-per-connection") == 0)
      per_connection = 1;
    else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
      nworkers = atoi(argv[++i]);
    else if (strcmp(argv[i], "--sndbuf") == 0 && i + 1 < argc)
      sndbuf = atoi(argv[++i]);
  }
  const int listener = 3;
  if (per_connection) return thread_per_connection(listener, sndbuf);
  if (nworkers < 1 || nworkers > MAX_WORKERS) {
    fprintf(stderr, "gw_threads: --workers 1 to %d\n", MAX_WORKERS);
    return 2;
  }
  for (int i = 0; i < nworkers; ++i) {
    pthread_mutex_init(&workers[i].lock, NULL);
    if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) {
      fprintf(stderr, "gw_threads: pthread_create failed\n");
      return 1;
    }
  }
  for (unsigned next = 0;; ++next) {
    int fd = accept(listener, NULL, NULL); // a blocking socket: waits in sock_accept
    if (fd < 0) continue;
    struct worker* w = &workers[next % (unsigned)nworkers];
    if (__atomic_load_n(&w->live, __ATOMIC_SEQ_CST) == MAX_CONNS) {
      close(fd);
      continue;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)
      perror("gw_threads: setsockopt SO_SNDBUF");
    struct conn* c = calloc(1, sizeof *c);
    c->fd = fd;
    __atomic_fetch_add(&w->live, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&w->lock);
    w->handed[w->nhanded++] = c;
    pthread_mutex_unlock(&w->lock);
  }
}
