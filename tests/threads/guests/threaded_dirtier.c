// A threaded program that keeps writing its shared memory, for migrations
// with several pre-copy rounds and for chains of incremental checkpoints:
// `threaded_dirtier MIB STEPS [PAGES]`.
//
// Two threads each own half of MIB MiB: they fill it with pseudo-random
// bytes, meet at a barrier (main then prints "ready"), and run STEPS steps
// of 10 ms: a step rewrites PAGES (default 4) pseudo-random 64 KiB pages of
// the thread's half and sleeps until the step's deadline (a slow engine
// runs behind).
// After the joins main prints a checksum of the whole buffer: each thread
// draws from its own generator, so the output depends only on the
// arguments, whatever moved the program in between.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { kPage = 65536, kThreads = 2 };

struct half {
  uint8_t* base;
  uint64_t pages;
  uint64_t rng;
};

static uint64_t steps, pages_per_step = 4;
static pthread_barrier_t filled;

static uint64_t next(uint64_t* rng) {
  *rng ^= *rng << 13;
  *rng ^= *rng >> 7;
  *rng ^= *rng << 17;
  return *rng;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void fill_page(struct half* h, uint8_t* page) {
  for (int i = 0; i < kPage; i += 8) {
    const uint64_t v = next(&h->rng);
    memcpy(page + i, &v, 8);
  }
}

static void* dirty(void* arg) {
  struct half* h = arg;
  for (uint64_t p = 0; p < h->pages; ++p) fill_page(h, h->base + p * kPage);
  pthread_barrier_wait(&filled);
  const uint64_t start = now_ns();
  for (uint64_t s = 0; s < steps; ++s) {
    for (uint64_t k = 0; k < pages_per_step; ++k)
      fill_page(h, h->base + next(&h->rng) % h->pages * kPage);
    const uint64_t deadline = start + (s + 1) * 10000000ull, t = now_ns();
    if (t < deadline) {
      struct timespec d = {(time_t)((deadline - t) / 1000000000ull),
                           (long)((deadline - t) % 1000000000ull)};
      nanosleep(&d, NULL);
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: threaded_dirtier MIB STEPS [PAGES]\n");
    return 2;
  }
  const uint64_t pages = strtoull(argv[1], NULL, 10) * 1024 * 1024 / kPage / kThreads;
  steps = strtoull(argv[2], NULL, 10);
  if (argc > 3) pages_per_step = strtoull(argv[3], NULL, 10);
  if (pages == 0) return 2;
  uint8_t* mem = malloc((kThreads * pages + 1) * kPage);
  if (!mem) return 3;
  uint8_t* base = (uint8_t*)(((uintptr_t)mem + kPage - 1) & ~(uintptr_t)(kPage - 1));
  struct half halves[kThreads];
  pthread_t threads[kThreads];
  pthread_barrier_init(&filled, NULL, kThreads + 1);
  for (int t = 0; t < kThreads; ++t) {
    halves[t] = (struct half){base + t * pages * kPage, pages, 88172645463325252ull + t};
    if (pthread_create(&threads[t], NULL, dirty, &halves[t]) != 0) return 4;
  }
  pthread_barrier_wait(&filled);
  printf("ready\n");
  fflush(stdout);
  for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  uint64_t h = 1469598103934665603ull;
  for (uint64_t i = 0; i < kThreads * pages * kPage; ++i) h = (h ^ base[i]) * 1099511628211ull;
  printf("checksum %016llx\n", (unsigned long long)h);
  return 0;
}
