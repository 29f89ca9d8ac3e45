// A program that keeps writing its memory, for migration tests and
// bench/migrate: `dirtier MIB RATE_MB STEPS [wait]`.
//
// It fills MIB MiB with pseudo-random bytes, prints "ready" (with `wait`,
// then waits for a line on stdin: blocked in a host call), then runs
// STEPS steps of 10 ms each: a step rewrites RATE_MB * 10000 bytes as whole
// 64 KiB pages of pseudo-random bytes at pseudo-random places (RATE_MB MB/s
// of dirty memory that does not compress) and
// then sleeps until the step's deadline (a slow engine just runs behind).
// At the end it prints a checksum of the
// whole buffer, so its output depends only on the arguments: the same
// after any migration.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kPage = 65536 };

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t deadline) {
  uint64_t t = now_ns();
  if (t >= deadline) return;
  struct timespec d = {(time_t)((deadline - t) / 1000000000ull),
                       (long)((deadline - t) % 1000000000ull)};
  nanosleep(&d, NULL);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: dirtier MIB RATE_MB STEPS [wait]\n");
    return 2;
  }
  const uint64_t mib = strtoull(argv[1], NULL, 10);
  const uint64_t rate_mb = strtoull(argv[2], NULL, 10);
  const uint64_t steps = strtoull(argv[3], NULL, 10);
  const int wait = argc > 4 && strcmp(argv[4], "wait") == 0;
  const uint64_t pages = mib * 1024 * 1024 / kPage;
  uint8_t* mem = malloc(pages * kPage + kPage);
  if (!mem || pages == 0) return 3;
  uint8_t* base = (uint8_t*)(((uintptr_t)mem + kPage - 1) & ~(uintptr_t)(kPage - 1));
  for (uint64_t i = 0; i < pages * kPage; i += 8) {
    uint64_t v = next();
    memcpy(base + i, &v, 8);
  }
  printf("ready %llu MiB\n", (unsigned long long)mib);
  fflush(stdout);
  if (wait) {
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 4;
  }

  const uint64_t pages_per_step = (rate_mb * 10000 + kPage - 1) / kPage;
  const uint64_t start = now_ns();
  uint64_t h = 1469598103934665603ull;
  for (uint64_t s = 0; s < steps; s++) {
    for (uint64_t k = 0; k < pages_per_step; k++) {
      uint8_t* p = base + (next() % pages) * kPage;
      for (int i = 0; i < kPage; i += 8) {
        const uint64_t v = next();
        memcpy(p + i, &v, 8);
      }
    }
    sleep_until(start + (s + 1) * 10000000ull);
    if (s % 100 == 99) {
      printf("step %llu\n", (unsigned long long)(s + 1));
      fflush(stdout);
    }
  }
  for (uint64_t i = 0; i < pages * kPage; i++) h = (h ^ base[i]) * 1099511628211ull;
  printf("done %llu steps, checksum %016llx\n", (unsigned long long)steps, (unsigned long long)h);
  return 0;
}
