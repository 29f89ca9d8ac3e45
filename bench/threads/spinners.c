// The checkpoint pause's subject (pause.py): N threads besides main, each
// in a loop of arithmetic until main has done its own iterations (the
// stable points --checkpoint-every-points counts); the odd ones take a
// mutex every 4096 iterations, so some wait in memory.atomic.wait when a
// checkpoint comes. Prints main's checksum, the same on every run.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

enum { kMaxThreads = 64, kIterations = 400000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int done;
static unsigned long long sink[kMaxThreads];

static unsigned long long step(unsigned long long* x) {
  *x = *x * 6364136223846793005ull + 1442695040888963407ull;
  return *x >> 33;
}

static void* spin(void* arg) {
  long id = (long)arg;
  unsigned long long x = (unsigned long long)id + 1, sum = 0;
  for (long i = 0; !__atomic_load_n(&done, __ATOMIC_RELAXED); ++i) {
    sum += step(&x);
    if ((id & 1) && (i & 4095) == 0) {
      pthread_mutex_lock(&lock);
      sink[id] += 1;
      pthread_mutex_unlock(&lock);
    }
  }
  sink[id] += sum;
  return NULL;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  if (n < 0 || n > kMaxThreads) return 2;
  pthread_t threads[kMaxThreads];
  for (long t = 0; t < n; ++t)
    if (pthread_create(&threads[t], NULL, spin, (void*)t) != 0) return 1;
  unsigned long long x = 7, sum = 0;
  for (long i = 0; i < kIterations; ++i) sum += step(&x);
  __atomic_store_n(&done, 1, __ATOMIC_RELAXED);
  for (int t = 0; t < n; ++t) pthread_join(threads[t], NULL);
  printf("%d threads, main's checksum %llu\n", n, sum);
  return 0;
}
