// Starts threads that wait until released, until pthread_create fails (or
// 1000 are running); prints how many started and the error, then releases
// and joins them all.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

enum { kMost = 1000 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static int go;

static void* wait_release(void* arg) {
  pthread_mutex_lock(&lock);
  while (!go) pthread_cond_wait(&released, &lock);
  pthread_mutex_unlock(&lock);
  return arg;
}

int main(void) {
  static pthread_t threads[kMost];
  int started = 0, error = 0;
  while (started < kMost) {
    error = pthread_create(&threads[started], NULL, wait_release, NULL);
    if (error != 0) break;
    ++started;
  }
  printf("started %d threads, then %s\n", started, error == EAGAIN ? "EAGAIN" : strerror(error));
  pthread_mutex_lock(&lock);
  go = 1;
  pthread_cond_broadcast(&released);
  pthread_mutex_unlock(&lock);
  for (int i = 0; i < started; ++i) pthread_join(threads[i], NULL);
  // The limit counts running threads: after the joins there is room again
  // (once the host has seen the last of them end: joined threads may still
  // be leaving wasi_thread_start).
  pthread_t again;
  for (int tries = 0; tries < 100000; ++tries) {
    error = pthread_create(&again, NULL, wait_release, NULL);
    if (error != EAGAIN) break;
    sched_yield();
  }
  if (error == 0) pthread_join(again, NULL);
  printf("joined them; another one: %s\n", error == 0 ? "started" : strerror(error));
  return 0;
}
