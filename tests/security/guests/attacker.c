// A hostile guest for the attack tests (attacks.py), one attack per mode.
// Everything it does is allowed by its sandbox; tern must stay safe anyway.
//
//   attacker plant-checkpoint DIR NAME   reads tern's pid from stdin, plants
//       a symlink to DIR/../victim at DIR/NAME.tmp.PID (tern's temporary
//       name before issue 14) the only way a guest can (a link pointing
//       inside, made in a subdirectory, then moved up a level, where it
//       points outside), then asks for a checkpoint
//   attacker write FILE          writes FILE, checkpoints, writes more
//   attacker read FILE           opens FILE, checkpoints, then prints FILE
//   attacker stdin               checkpoints, then copies stdin to stdout
//   attacker udp-shutdown        receives on a UDP socket shut down for
//                                reading (Linux returns 0 at once)
//   attacker udp-timeout         a receive timeout near INT64_MAX µs, which
//                                must wait, not fail at once; a negative
//                                one, which is EDOM
//   attacker fill MIB            fills MIB MiB of memory with noise (slow to
//                                write down), then sleeps for ever
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi_socket_ext.h>

__attribute__((import_module("tern"), import_name("checkpoint"))) int tern_checkpoint(void);

static int fail(const char* what) {
  printf("%s: %s\n", what, strerror(errno));
  return 1;
}

static int plant_checkpoint(const char* dir, const char* name) {
  char pid[32] = {0};
  if (!fgets(pid, sizeof pid, stdin)) return fail("read pid");
  pid[strcspn(pid, "\n")] = 0;
  char sub[512], link[512], planted[512];
  snprintf(sub, sizeof sub, "%s/x", dir);
  snprintf(link, sizeof link, "%s/x/l", dir);
  snprintf(planted, sizeof planted, "%s/%s.tmp.%s", dir, name, pid);
  if (mkdir(sub, 0755) != 0) return fail("mkdir");
  if (symlink("../victim", link) != 0) return fail("symlink");
  if (rename(link, planted) != 0) return fail("rename");
  printf("planted %s.tmp.%s\n", name, pid);
  printf("checkpoint %d\n", tern_checkpoint());
  return 0;
}

static int write_file(const char* path) {
  FILE* f = fopen(path, "w");
  if (!f) return fail("open");
  fputs("written before\n", f);
  fflush(f);
  int r = tern_checkpoint();
  fputs("written after\n", f);
  fclose(f);
  printf("checkpoint %d\n", r);
  return 0;
}

static int copy(FILE* in) {
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, stdout);
  return 0;
}

static int read_file(const char* path) {
  FILE* f = fopen(path, "r");
  if (!f) return fail("open");
  printf("checkpoint %d\n", tern_checkpoint());
  fflush(stdout);
  copy(f);
  fclose(f);
  return 0;
}

static int read_stdin(void) {
  printf("checkpoint %d\n", tern_checkpoint());
  fflush(stdout);
  return copy(stdin);
}

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  if (fd < 0 || bind(fd, (struct sockaddr*)&a, sizeof a) != 0) return -1;
  socklen_t len = sizeof a;
  if (getsockname(fd, (struct sockaddr*)&a, &len) != 0) return -1;
  printf("bound to port %d\n", ntohs(a.sin_port));
  fflush(stdout);
  return fd;
}

static int udp_shutdown(void) {
  int fd = udp_socket();
  if (fd < 0) return fail("socket");
  // Linux says ENOTCONN for an unconnected UDP socket, but shuts it down.
  int r = shutdown(fd, SHUT_RD);
  printf("shutdown %d\n", r);
  char buf[16];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  printf("recv returned %zd\n", n);
  return 0;
}

static int udp_timeout(void) {
  int fd = udp_socket();
  if (fd < 0) return fail("socket");
  __wasi_errno_t e = __wasi_sock_set_recv_timeout(fd, (uint64_t)INT64_MIN);
  printf("timeout INT64_MIN: %s\n", e == __WASI_ERRNO_DOM ? "EDOM" : e == 0 ? "accepted" : "?");
  e = __wasi_sock_set_recv_timeout(fd, (uint64_t)-1);
  printf("timeout -1: %s\n", e == __WASI_ERRNO_DOM ? "EDOM" : e == 0 ? "accepted" : "?");
  struct timeval forever = {INT64_MAX / 1000000 - 1, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &forever, sizeof forever) != 0)
    return fail("setsockopt");
  printf("waiting\n");
  fflush(stdout);
  char buf[16] = {0};
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  if (n < 0) return fail("recv");
  printf("received %s\n", buf);
  return 0;
}

static int fill(const char* mib) {
  size_t bytes = (size_t)atoi(mib) << 20;
  uint64_t* p = malloc(bytes);
  if (!p) return fail("malloc");
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < bytes / 8; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p[i] = x;
  }
  printf("filled\n");
  for (;;) sleep(1);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "plant-checkpoint") && argc == 4) return plant_checkpoint(argv[2], argv[3]);
  if (!strcmp(mode, "write") && argc == 3) return write_file(argv[2]);
  if (!strcmp(mode, "read") && argc == 3) return read_file(argv[2]);
  if (!strcmp(mode, "stdin")) return read_stdin();
  if (!strcmp(mode, "udp-shutdown")) return udp_shutdown();
  if (!strcmp(mode, "udp-timeout")) return udp_timeout();
  if (!strcmp(mode, "fill") && argc == 3) return fill(argv[2]);
  fprintf(stderr, "usage: attacker MODE ARGS\n");
  return 2;
}
