// A parallel sum under a mutex: 4 threads add the numbers 0..N-1 into one
// total, one locked addition per number (the lock is contended all along).
#include <pthread.h>
#include <stdio.h>

enum { kThreads = 4, kNumbers = 100000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long long total;
static int additions;

static void* add_share(void* arg) {
  long first = (long)arg;
  for (long i = first; i < kNumbers; i += kThreads) {
    pthread_mutex_lock(&lock);
    total += i;
    ++additions;
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

int main(void) {
  pthread_t threads[kThreads];
  for (long t = 0; t < kThreads; ++t)
    if (pthread_create(&threads[t], NULL, add_share, (void*)t) != 0) return 1;
  for (int t = 0; t < kThreads; ++t) pthread_join(threads[t], NULL);
  printf("sum %lld of %d additions\n", total, additions);
  return 0;
}
