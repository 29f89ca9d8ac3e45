// Leaves bytes unread in the kernel on purpose: it takes a first
// connection, answers its greeting line with "sleeping", then waits for a
// second connection without reading the first. A checkpoint taken while it
// waits finds the first connection's later bytes unread; once a second
// client comes (after the restore), it echoes everything the first sends
// until its end of stream.
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

int main(void) {
  const int listener = 3;
  int first = accept(listener, NULL, NULL);
  if (first < 0) return perror("accept"), 1;
  char line[64];
  size_t len = 0;
  while (len < sizeof line) { // one byte at a time: nothing after the line is read
    if (read(first, line + len, 1) != 1) return 1;
    if (line[len++] == '\n') break;
  }
  if (write_all(first, "sleeping\n", 9) != 0) return 1;
  int second = accept(listener, NULL, NULL);
  if (second < 0) return perror("accept"), 1;
  char buf[65536];
  for (;;) {
    ssize_t n = read(first, buf, sizeof buf);
    if (n < 0) return perror("read"), 1;
    if (n == 0) break;
    if (write_all(first, buf, (size_t)n) != 0) return 1;
  }
  shutdown(first, SHUT_WR);
  close(second);
  return 0;
}
