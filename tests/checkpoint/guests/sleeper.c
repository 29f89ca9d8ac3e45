// Prints "tick N" and sleeps (poll_oneoff) between ticks: most of its time
// is spent blocked in a host call, where checkpoints must still land.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  int ticks = argc > 1 ? atoi(argv[1]) : 20;
  long ms = argc > 2 ? atol(argv[2]) : 50;
  unsigned long sum = 0;
  for (int i = 0; i < ticks; i++) {
    sum = sum * 31 + (unsigned long)i;
    printf("tick %d %lu\n", i, sum);
    fflush(stdout);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
  }
  printf("done %lu\n", sum);
  return 0;
}
