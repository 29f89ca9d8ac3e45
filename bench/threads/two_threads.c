/* The 2-thread kernel of bench/threads/bench.py, the same source built
 * natively (glibc's pthreads) and for wasm32-wasi-threads (tern's guest
 * library): two threads each mix their half of an array for a round, meet
 * at a barrier, add their half's checksum into a shared total under a
 * mutex, and meet again; kRounds rounds. The work per round is small
 * enough that the barriers and the lock (memory.atomic.wait/notify under
 * tern, futexes natively) show in the time, large enough that the mixing
 * dominates. */
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#ifdef TERN_BENCH_SMALL
enum { kRounds = 40 };
#else
enum { kRounds = 40000 };
#endif
enum { kCells = 1 << 14, kThreads = 2 };

static uint64_t cells[kCells];
static uint64_t total;
static pthread_mutex_t total_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t round_end;

static uint64_t mix64(uint64_t h, uint64_t v) {
  uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void* run_half(void* arg) {
  const int half = (int)(intptr_t)arg;
  const int begin = half * (kCells / kThreads), end = begin + kCells / kThreads;
  for (int round = 0; round < kRounds; ++round) {
    uint64_t sum = 0;
    for (int i = begin; i < end; ++i) {
      cells[i] = mix64(cells[i], (uint64_t)round);
      sum += cells[i] >> 8;
    }
    pthread_barrier_wait(&round_end);
    pthread_mutex_lock(&total_lock);
    total = mix64(total, sum) ^ sum;
    pthread_mutex_unlock(&total_lock);
    pthread_barrier_wait(&round_end);
  }
  return NULL;
}

int main(void) {
  for (int i = 0; i < kCells; ++i) cells[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
  pthread_barrier_init(&round_end, NULL, kThreads);
  pthread_t threads[kThreads];
  for (intptr_t t = 0; t < kThreads; ++t)
    if (pthread_create(&threads[t], NULL, run_half, (void*)t) != 0) return 1;
  for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  uint64_t check = 0;
  for (int i = 0; i < kCells; ++i) check = mix64(check, cells[i]);
  /* The order of the two additions per round varies; the cells do not. */
  printf("cells %016" PRIx64 "\n", check);
  (void)total;
  return 0;
}
