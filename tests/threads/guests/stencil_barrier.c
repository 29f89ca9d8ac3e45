// A barrier-phased stencil: 4 threads each update a quarter of a 1-D grid
// (each cell becomes a weighted sum of its neighbours, modulo a prime) for
// kSteps steps, a barrier between reading one grid and the next step. The
// same steps run serially afterwards; both checksums are printed.
#include <pthread.h>
#include <stdio.h>
#include <string.h>

enum { kThreads = 4, kCells = 4096, kSteps = 200 };
static const unsigned kPrime = 1000003;

static unsigned grids[2][kCells];
static pthread_barrier_t step_done;

static unsigned next_value(const unsigned* g, int i) {
  unsigned left = g[(i + kCells - 1) % kCells], right = g[(i + 1) % kCells];
  return (left + 2 * g[i] + 3 * right + 1) % kPrime;
}

static void* run_part(void* arg) {
  long part = (long)arg;
  int begin = part * (kCells / kThreads), end = begin + kCells / kThreads;
  for (int step = 0; step < kSteps; ++step) {
    const unsigned* from = grids[step % 2];
    unsigned* to = grids[(step + 1) % 2];
    for (int i = begin; i < end; ++i) to[i] = next_value(from, i);
    pthread_barrier_wait(&step_done);
  }
  return NULL;
}

static unsigned long long checksum(const unsigned* g) {
  unsigned long long sum = 0;
  for (int i = 0; i < kCells; ++i) sum = sum * 31 + g[i];
  return sum;
}

static void fill(unsigned* g) {
  for (int i = 0; i < kCells; ++i) g[i] = (unsigned)(i * 7919u) % kPrime;
}

int main(void) {
  fill(grids[0]);
  pthread_barrier_init(&step_done, NULL, kThreads);
  pthread_t threads[kThreads];
  for (long t = 0; t < kThreads; ++t)
    if (pthread_create(&threads[t], NULL, run_part, (void*)t) != 0) return 1;
  for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  unsigned long long parallel = checksum(grids[kSteps % 2]);

  static unsigned serial[2][kCells];
  fill(serial[0]);
  for (int step = 0; step < kSteps; ++step)
    for (int i = 0; i < kCells; ++i) serial[(step + 1) % 2][i] = next_value(serial[step % 2], i);
  printf("stencil %llu, serial %llu\n", parallel, checksum(serial[kSteps % 2]));
  return 0;
}
