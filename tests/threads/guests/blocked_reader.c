// One thread blocks reading stdin (fd_read on a pipe) while the main
// thread makes its own WASI calls (issue 19: a blocked call must not hold
// the other threads' calls up). The main thread prints while the reader
// waits; the test feeds stdin only after that line (and may checkpoint the
// program in between), so without that the program never ends. Output
// goes out with write(): wasi-libc's stdio has no locks, and the reader's
// line may come while the main thread is still inside its fflush.
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void say(const char* text) {
  write(1, text, strlen(text));
}

static void* reader(void* arg) {
  (void)arg;
  char buf[256];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(0, buf + got, sizeof buf - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    if (got == sizeof buf - 1) break;
  }
  char line[sizeof buf + 16] = "reader got '";
  memcpy(line + strlen(line), buf, got);
  memcpy(line + 12 + got, "'\n", 3);
  say(line);
  return NULL;
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  // Time for the reader to block (the output is the same if it has not).
  struct timespec pause = {0, 100 * 1000 * 1000};
  nanosleep(&pause, NULL);
  say("main printed while the reader waits\n");
  pthread_join(t, NULL);
  say("done\n");
  return 0;
}
