// A poll()-based server for the gateway tests (gw_protocol.h): it accepts
// on its listening socket (fd 3, from --listen) and serves any number of
// connections at once, each pipelining requests, with non-blocking reads
// and writes. It checks every request body and closes a connection whose
// bytes are wrong (the client then sees it). It runs until killed.
// `--sndbuf N`: each accepted connection's SO_SNDBUF is N, so that a big
// reply cannot all sit in the kernel and the program's writes block in the
// middle of it.
#include "gw_protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi_socket_ext.h>

#define MAX_CONNS 512
#define IN_CAP 65536
#define OUT_LIMIT (4u << 20) // stop reading a connection whose replies pile up

struct conn {
  int fd;
  char in[IN_CAP];
  size_t in_len;
  // A request whose body is still arriving.
  int in_body;
  uint64_t body_seq, body_left, body_at, body_reply;
  char* out;
  size_t out_len, out_cap, out_at;
  uint64_t received, sent;
};

static struct conn* conns[MAX_CONNS];
static int nconns;
static int sndbuf; // --sndbuf, 0: the default

static void out_append(struct conn* c, const void* data, size_t n) {
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    c->out = realloc(c->out, cap);
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, n);
  c->out_len += n;
}

static void reply(struct conn* c, uint64_t seq, uint64_t size) {
  char head[64];
  int n = snprintf(head, sizeof head, "REP %llu %llu\n", (unsigned long long)seq,
                   (unsigned long long)size);
  out_append(c, head, (size_t)n);
  uint8_t chunk[4096];
  for (uint64_t done = 0; done < size;) {
    size_t k = size - done < sizeof chunk ? (size_t)(size - done) : sizeof chunk;
    for (size_t i = 0; i < k; ++i) chunk[i] = gw_reply_byte(seq, done + i);
    out_append(c, chunk, k);
    done += k;
  }
}

// The peer's address as the program sees it (through the gateway: the
// client's, not the gateway's).
static void peer_text(int fd, char* out, size_t size) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  if (getpeername(fd, (struct sockaddr*)&ss, &len) != 0) {
    snprintf(out, size, "error:%d", errno);
    return;
  }
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in* in4 = (struct sockaddr_in*)&ss;
    snprintf(out, size, "%s:%u", inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof ip),
             ntohs(in4->sin_port));
  } else {
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)&ss;
    snprintf(out, size, "[%s]:%u", inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip),
             ntohs(in6->sin6_port));
  }
}

// Consumes what `in` holds; returns -1 when the client's bytes are wrong.
static int parse(struct conn* c) {
  size_t at = 0;
  for (;;) {
    if (c->in_body) {
      while (c->body_left > 0 && at < c->in_len) {
        if ((uint8_t)c->in[at] != gw_body_byte(c->body_seq, c->body_at)) {
          fprintf(stderr, "gw_server: fd %d: request %llu: body byte %llu is wrong\n", c->fd,
                  (unsigned long long)c->body_seq, (unsigned long long)c->body_at);
          return -1;
        }
        ++at, ++c->body_at, --c->body_left;
      }
      if (c->body_left > 0) break;
      c->in_body = 0;
      reply(c, c->body_seq, c->body_reply);
      continue;
    }
    char* nl = memchr(c->in + at, '\n', c->in_len - at);
    if (!nl) break;
    *nl = 0;
    char* line = c->in + at;
    at = (size_t)(nl - c->in) + 1;
    unsigned long long seq, size, body;
    char text[160];
    if (sscanf(line, "REQ %llu %llu %llu", &seq, &size, &body) == 3) {
      c->in_body = 1;
      c->body_seq = seq, c->body_left = body, c->body_at = 0, c->body_reply = size;
    } else if (sscanf(line, "STAT %llu", &seq) == 1) {
      int n = snprintf(text, sizeof text, "STAT %llu %llu %llu\n", seq,
                       (unsigned long long)(c->received - (c->in_len - at)),
                       (unsigned long long)(c->sent + (c->out_len - c->out_at)));
      out_append(c, text, (size_t)n);
    } else if (sscanf(line, "PEER %llu", &seq) == 1) {
      char peer[80];
      peer_text(c->fd, peer, sizeof peer);
      int n = snprintf(text, sizeof text, "PEER %llu %s\n", seq, peer);
      out_append(c, text, (size_t)n);
    } else {
      fprintf(stderr, "gw_server: fd %d: bad request line '%s'\n", c->fd, line);
      return -1;
    }
  }
  memmove(c->in, c->in + at, c->in_len - at);
  c->in_len -= at;
  return 0;
}

static void drop(int i) {
  close(conns[i]->fd);
  free(conns[i]->out);
  free(conns[i]);
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

// Returns -1 when the connection is over.
static int serve(struct conn* c, short revents) {
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
    if (n == 0) return -1;
    if (n < 0 && errno != EAGAIN) return -1;
    if (n > 0) {
      c->in_len += (size_t)n;
      c->received += (uint64_t)n;
      if (parse(c) != 0) return -1;
    }
  }
  while (c->out_at < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_at, c->out_len - c->out_at);
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) return -1;
    c->out_at += (size_t)n;
    c->sent += (uint64_t)n;
  }
  if (c->out_at == c->out_len) c->out_at = c->out_len = 0;
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--sndbuf") == 0) sndbuf = atoi(argv[2]);
  const int listener = 3;
  fcntl(listener, F_SETFL, O_NONBLOCK);
  static struct pollfd fds[MAX_CONNS + 1];
  for (;;) {
    fds[0] = (struct pollfd){listener, POLLIN, 0};
    for (int i = 0; i < nconns; ++i) {
      struct conn* c = conns[i];
      short events = 0;
      if (c->out_len - c->out_at < OUT_LIMIT) events |= POLLIN;
      if (c->out_at < c->out_len) events |= POLLOUT;
      fds[i + 1] = (struct pollfd){c->fd, events, 0};
    }
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
