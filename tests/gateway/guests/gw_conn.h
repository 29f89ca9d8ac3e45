// One connection of the gateway tests' servers (gw_server.c, gw_threads.c):
// its buffers, the protocol of gw_protocol.h (requests parsed, bodies
// checked, replies built) and its non-blocking reads and writes. A
// connection is served by one thread at a time.
//
// The reads and writes call WASI directly and take its error code from the
// return value: wasi-libc's errno is one variable for every thread (see
// guest/include/pthread.h), so a threaded server could not tell its own
// EAGAIN from another thread's error.
#pragma once

#include "gw_protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>
#include <wasi_socket_ext.h>

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

static inline void out_append(struct conn* c, const void* data, size_t n) {
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    c->out = realloc(c->out, cap);
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, n);
  c->out_len += n;
}

static inline void reply(struct conn* c, uint64_t seq, uint64_t size) {
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
static inline void peer_text(int fd, char* out, size_t size) {
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
static inline int parse(struct conn* c) {
  size_t at = 0;
  for (;;) {
    if (c->in_body) {
      while (c->body_left > 0 && at < c->in_len) {
        if ((uint8_t)c->in[at] != gw_body_byte(c->body_seq, c->body_at)) {
          fprintf(stderr, "gw: fd %d: request %llu: body byte %llu is wrong\n", c->fd,
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
      fprintf(stderr, "gw: fd %d: bad request line '%s'\n", c->fd, line);
      return -1;
    }
  }
  memmove(c->in, c->in + at, c->in_len - at);
  c->in_len -= at;
  return 0;
}

// The poll events the connection waits for.
static inline short conn_events(const struct conn* c) {
  short events = 0;
  if (c->out_len - c->out_at < OUT_LIMIT) events |= POLLIN;
  if (c->out_at < c->out_len) events |= POLLOUT;
  return events;
}

// Reads what poll said is there, then writes what it can without blocking
// (the fd is non-blocking). Returns -1 when the connection is over.
static inline int serve(struct conn* c, short revents) {
  if (revents & (POLLIN | POLLHUP | POLLERR)) {
    __wasi_iovec_t iov = {(uint8_t*)c->in + c->in_len, IN_CAP - c->in_len};
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_fd_read(c->fd, &iov, 1, &n);
    if (e != 0 && e != __WASI_ERRNO_AGAIN) return -1;
    if (e == 0 && n == 0) return -1;
    if (e == 0) {
      c->in_len += n;
      c->received += n;
      if (parse(c) != 0) return -1;
    }
  }
  while (c->out_at < c->out_len) {
    __wasi_ciovec_t iov = {(const uint8_t*)c->out + c->out_at, c->out_len - c->out_at};
    __wasi_size_t n = 0;
    __wasi_errno_t e = __wasi_fd_write(c->fd, &iov, 1, &n);
    if (e == __WASI_ERRNO_AGAIN) break;
    if (e != 0 || n == 0) return -1;
    c->out_at += n;
    c->sent += n;
  }
  if (c->out_at == c->out_len) c->out_at = c->out_len = 0;
  return 0;
}

// Serves the connection with blocking reads and writes until it ends (its
// fd must be blocking): reads what comes, then writes every reply it
// completed before reading again.
static inline void serve_blocking(struct conn* c) {
  for (;;) {
    __wasi_iovec_t in = {(uint8_t*)c->in + c->in_len, IN_CAP - c->in_len};
    __wasi_size_t n = 0;
    if (__wasi_fd_read(c->fd, &in, 1, &n) != 0 || n == 0) return;
    c->in_len += n;
    c->received += n;
    if (parse(c) != 0) return;
    while (c->out_at < c->out_len) {
      __wasi_ciovec_t out = {(const uint8_t*)c->out + c->out_at, c->out_len - c->out_at};
      if (__wasi_fd_write(c->fd, &out, 1, &n) != 0 || n == 0) return;
      c->out_at += n;
      c->sent += n;
    }
    c->out_at = c->out_len = 0;
  }
}

static inline void conn_free(struct conn* c) {
  close(c->fd);
  free(c->out);
  free(c);
}
