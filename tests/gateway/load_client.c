// The clients of the gateway tests and benchmark (a native program, run in
// the clients' network namespace): N persistent connections to ADDR:PORT,
// each pipelining numbered requests (guests/gw_protocol.h) with up to P in
// flight, checking every reply byte and that replies come exactly once and
// in order. At the end each connection asks the server for its byte counts
// (STAT) and compares them with its own. Prints one JSON object:
// requests, errors, latency percentiles, the longest stall (the longest
// time any connection waited for a reply while it had requests out).
//
//   load_client ADDR PORT [--connections N] [--pipeline P]
//     [--requests R | --duration SECONDS | --until-file PATH]
//     [--reply-size MAX] [--body-size MAX] [--latencies FILE] [--stalls FILE]
//
// --stalls: every wait for a reply of 10 ms or more, "FROM TO" per line in
// CLOCK_MONOTONIC seconds (a bench finds the one a move caused).
// --until-file: run until PATH exists (the test creates it after its
// moves), then finish the requests in flight.
#include "guests/gw_protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIPELINE 64

struct conn {
  int fd;
  int index;
  uint64_t next_send, next_expect; // sequence numbers
  double sent_at[MAX_PIPELINE];    // send times of requests in flight, by seq % MAX_PIPELINE
  // Outgoing bytes.
  char* out;
  size_t out_len, out_at, out_cap;
  // Parsing replies.
  char line[256];
  size_t line_len;
  int in_body;
  uint64_t body_seq, body_left, body_at;
  uint64_t bytes_sent, bytes_received;
  double last_progress; // last reply, or when requests went out with none pending
  double longest_stall;
  double longest_stall_from; // when it began (CLOCK_MONOTONIC seconds)
  int done;                  // no more requests to send
  int stat_sent;             // the final STAT is out
  int finished;              // its STAT reply checked
  int stat_ok;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

static struct {
  int connections, pipeline;
  uint64_t requests; // per connection, 0: no limit
  double duration;
  const char* until_file;
  uint64_t reply_max, body_max;
  const char* latencies;
  const char* stalls;
} opt = {1, 1, 1000, 0, NULL, 512, 256, NULL, NULL};

static double* lat;
static size_t nlat, caplat;
// Waits for a reply of 10 ms or more, as [from, to] on CLOCK_MONOTONIC (the
// first MAX_STALLS), for --stalls.
#define MAX_STALLS 65536
#define STALL_LISTED 0.010
static double stalls[MAX_STALLS][2];
static size_t nstalls;
static uint64_t errors, replies;

static void fail(struct conn* c, const char* what) {
  if (errors++ < 20) fprintf(stderr, "load_client: connection %d: %s\n", c->index, what);
}

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

static uint64_t reply_size(struct conn* c, uint64_t seq) {
  return mix((uint64_t)c->index * 1000003u + seq) % (opt.reply_max + 1);
}

static void send_request(struct conn* c, double t) {
  uint64_t seq = c->next_send++;
  uint64_t body = mix(seq * 7919u + (uint64_t)c->index) % (opt.body_max + 1);
  char head[80];
  int n = snprintf(head, sizeof head, "REQ %llu %llu %llu\n", (unsigned long long)seq,
                   (unsigned long long)reply_size(c, seq), (unsigned long long)body);
  out_append(c, head, (size_t)n);
  for (uint64_t i = 0; i < body; ++i) {
    uint8_t b = gw_body_byte(seq, i);
    out_append(c, &b, 1);
  }
  if (c->next_expect + 1 == c->next_send) c->last_progress = t; // it was idle
  c->sent_at[seq % MAX_PIPELINE] = t;
}

static void fill_pipeline(struct conn* c, double t, int stopping) {
  if (stopping || (opt.requests && c->next_send >= opt.requests)) c->done = 1;
  while (!c->done && c->next_send - c->next_expect < (uint64_t)opt.pipeline) {
    send_request(c, t);
    if (opt.requests && c->next_send >= opt.requests) c->done = 1;
  }
  if (c->done && !c->stat_sent && c->next_expect == c->next_send) {
    char head[40];
    int n = snprintf(head, sizeof head, "STAT %llu\n", (unsigned long long)c->next_send);
    out_append(c, head, (size_t)n);
    c->stat_sent = 1;
  }
}

// A wait for a reply that has lasted since c->last_progress, at time t.
static void note_stall(struct conn* c, double t) {
  if (t - c->last_progress <= c->longest_stall) return;
  c->longest_stall = t - c->last_progress;
  c->longest_stall_from = c->last_progress;
}

static void got_reply(struct conn* c, uint64_t seq, double t) {
  double l = t - c->sent_at[seq % MAX_PIPELINE];
  if (nlat == caplat) {
    caplat = caplat ? caplat * 2 : 1 << 16;
    lat = realloc(lat, caplat * sizeof *lat);
  }
  lat[nlat++] = l;
  ++replies;
  note_stall(c, t);
  if (t - c->last_progress >= STALL_LISTED && nstalls < MAX_STALLS) {
    stalls[nstalls][0] = c->last_progress;
    stalls[nstalls++][1] = t;
  }
  c->last_progress = t;
  ++c->next_expect;
}

// A reply line: "REP seq size" starts a body; "STAT seq recv sent" ends.
static void on_line(struct conn* c, double t) {
  unsigned long long seq, size, recv_, sent_;
  if (sscanf(c->line, "REP %llu %llu", &seq, &size) == 2) {
    if (seq != c->next_expect) {
      char m[120];
      snprintf(m, sizeof m, "reply %llu where %llu was expected", seq,
               (unsigned long long)c->next_expect);
      fail(c, m);
    }
    if (size != reply_size(c, seq)) fail(c, "reply of the wrong size");
    c->in_body = 1;
    c->body_seq = seq, c->body_left = size, c->body_at = 0;
    if (size == 0) {
      c->in_body = 0;
      got_reply(c, seq, t);
    }
    return;
  }
  if (sscanf(c->line, "STAT %llu %llu %llu", &seq, &recv_, &sent_) == 3) {
    // The server received every byte we sent (this STAT included); we
    // received every byte it sent before this reply.
    uint64_t line_len = c->line_len + 1;
    c->stat_ok = recv_ == c->bytes_sent && sent_ == c->bytes_received - line_len;
    if (!c->stat_ok) {
      char m[200];
      snprintf(m, sizeof m, "byte counts differ: server received %llu of %llu, sent %llu of %llu",
               recv_, (unsigned long long)c->bytes_sent, sent_,
               (unsigned long long)(c->bytes_received - line_len));
      fail(c, m);
    }
    c->finished = 1;
    return;
  }
  fail(c, "unexpected line");
}

static void on_bytes(struct conn* c, const uint8_t* p, size_t n, double t) {
  for (size_t i = 0; i < n;) {
    if (c->in_body) {
      while (i < n && c->body_left > 0) {
        if (p[i] != gw_reply_byte(c->body_seq, c->body_at)) {
          fail(c, "a reply byte is wrong");
          c->body_left = 1; // count it once
        }
        ++i, ++c->body_at, --c->body_left;
      }
      if (c->body_left == 0) {
        c->in_body = 0;
        got_reply(c, c->body_seq, t);
      }
      continue;
    }
    char ch = (char)p[i++];
    if (ch == '\n') {
      c->line[c->line_len] = 0;
      on_line(c, t);
      c->line_len = 0;
    } else if (c->line_len + 1 < sizeof c->line) {
      c->line[c->line_len++] = ch;
    }
  }
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static int connect_to(const char* addr, int port) {
  struct sockaddr_in in4;
  memset(&in4, 0, sizeof in4);
  in4.sin_family = AF_INET;
  in4.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, addr, &in4.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&in4, sizeof in4) != 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return fd;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: load_client ADDR PORT [options]\n");
    return 2;
  }
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--connections"))
      opt.connections = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--pipeline"))
      opt.pipeline = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--requests"))
      opt.requests = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--duration"))
      opt.duration = atof(argv[i + 1]), opt.requests = 0;
    else if (!strcmp(argv[i], "--until-file"))
      opt.until_file = argv[i + 1], opt.requests = 0;
    else if (!strcmp(argv[i], "--reply-size"))
      opt.reply_max = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--body-size"))
      opt.body_max = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--latencies"))
      opt.latencies = argv[i + 1];
    else if (!strcmp(argv[i], "--stalls"))
      opt.stalls = argv[i + 1];
    else {
      fprintf(stderr, "load_client: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (opt.pipeline < 1 || opt.pipeline > MAX_PIPELINE) opt.pipeline = MAX_PIPELINE;
  struct conn* conns = calloc((size_t)opt.connections, sizeof *conns);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  const double start = now_s();
  for (int i = 0; i < opt.connections; ++i) {
    conns[i].index = i;
    conns[i].fd = connect_to(argv[1], atoi(argv[2]));
    if (conns[i].fd < 0) {
      printf("{\"error\": \"connect: %s\"}\n", strerror(errno));
      return 1;
    }
    struct epoll_event ev = {EPOLLIN | EPOLLOUT, {.u32 = (uint32_t)i}};
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    conns[i].last_progress = start;
  }
  int finished = 0, stopping = 0, broken = 0;
  static uint8_t buf[1 << 16];
  while (finished + broken < opt.connections) {
    double t = now_s();
    if (!stopping && ((opt.duration > 0 && t - start >= opt.duration) ||
                      (opt.until_file && access(opt.until_file, F_OK) == 0)))
      stopping = 1;
    for (int i = 0; i < opt.connections; ++i) {
      struct conn* c = &conns[i];
      if (c->fd < 0 || c->finished) continue;
      fill_pipeline(c, t, stopping);
      while (c->out_at < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_at, c->out_len - c->out_at, MSG_NOSIGNAL);
        if (n < 0) break;
        c->out_at += (size_t)n;
        c->bytes_sent += (uint64_t)n;
      }
      if (c->out_at == c->out_len) c->out_at = c->out_len = 0;
      if (c->next_send > c->next_expect) note_stall(c, t);
    }
    struct epoll_event evs[64];
    int n = epoll_wait(ep, evs, 64, 50);
    t = now_s();
    for (int k = 0; k < n; ++k) {
      struct conn* c = &conns[evs[k].data.u32];
      if (c->fd < 0) continue;
      if (c->out_at < c->out_len) evs[k].events |= EPOLLOUT; // written at the top of the loop
      for (;;) {
        ssize_t got = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got > 0) {
          c->bytes_received += (uint64_t)got;
          on_bytes(c, buf, (size_t)got, t);
          if (c->finished) {
            ++finished;
            break;
          }
          continue;
        }
        if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          char m[120];
          snprintf(m, sizeof m, "connection broken after %llu replies: %s",
                   (unsigned long long)c->next_expect,
                   got == 0 ? "end of stream" : strerror(errno));
          fail(c, m);
          close(c->fd);
          c->fd = -1;
          ++broken;
        }
        break;
      }
      // Only ask for EPOLLOUT while there is something to write.
      struct epoll_event ev = {EPOLLIN | (c->out_at < c->out_len ? EPOLLOUT : 0),
                               {.u32 = (uint32_t)c->index}};
      if (c->fd >= 0) epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (n == 0 && stopping && t - start > 3600) break;
  }
  const double elapsed = now_s() - start;
  qsort(lat, nlat, sizeof *lat, cmp_double);
  double stall = 0, stall_from = 0;
  uint64_t stats_ok = 0;
  for (int i = 0; i < opt.connections; ++i) {
    if (conns[i].longest_stall > stall) {
      stall = conns[i].longest_stall;
      stall_from = conns[i].longest_stall_from;
    }
    stats_ok += conns[i].stat_ok;
  }
  if (opt.latencies) {
    FILE* f = fopen(opt.latencies, "w");
    for (size_t i = 0; f && i < nlat; ++i) fprintf(f, "%.9f\n", lat[i]);
    if (f) fclose(f);
  }
  double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] : 0;
  printf("{\"connections\": %d, \"replies\": %llu, \"errors\": %llu, \"broken\": %d, "
         "\"counts_agree\": %llu, \"seconds\": %.3f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
         "\"max_us\": %.1f, \"longest_stall_ms\": %.3f, \"longest_stall_from_s\": %.6f}\n",
         opt.connections, (unsigned long long)replies, (unsigned long long)errors, broken,
         (unsigned long long)stats_ok, elapsed, p50 * 1e6, p99 * 1e6,
         nlat ? lat[nlat - 1] * 1e6 : 0, stall * 1e3, stall_from);
  if (opt.stalls) {
    FILE* f = fopen(opt.stalls, "w");
    for (size_t i = 0; f && i < nstalls; ++i) fprintf(f, "%.6f %.6f\n", stalls[i][0], stalls[i][1]);
    if (f) fclose(f);
  }
  return errors == 0 && broken == 0 && stats_ok == (uint64_t)opt.connections ? 0 : 1;
}
