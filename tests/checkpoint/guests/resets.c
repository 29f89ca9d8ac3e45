// A server on the --listen socket (fd 3) that holds a connection across a
// checkpoint it asks for: restored, that connection reports ECONNRESET and
// the listening socket accepts new ones.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

__attribute__((import_module("tern"), import_name("checkpoint"))) int tern_checkpoint(void);

int main(void) {
  int conn = accept(3, NULL, NULL);
  if (conn < 0) {
    perror("accept");
    return 1;
  }
  send(conn, "hi", 2, 0);
  int restored = tern_checkpoint();
  char buf[16];
  ssize_t n = recv(conn, buf, sizeof buf, 0);
  printf("restored=%d recv=%d %s\n", restored, (int)n, n < 0 ? strerror(errno) : "ok");
  fflush(stdout);
  int next = accept(3, NULL, NULL);
  n = next >= 0 ? recv(next, buf, sizeof buf, 0) : -1;
  printf("next connection: %.*s\n", (int)(n > 0 ? n : 0), buf);
  return 0;
}
