// A small thread pool: 3 workers take tasks from a shared list (mutex +
// condition variables); main submits 200 tasks (the Collatz steps of a
// number), waits until all are done, then shuts the pool down. Each task
// counts its steps kRepeat times (same answer): a run must last long enough
// for the stress tests' signals to land in it (200 single counts ended
// within 3 ms of startup, and a random signal missed most runs).
#include <pthread.h>
#include <stdio.h>

enum { kWorkers = 3, kTasks = 200, kRepeat = 500 };

// Read at every repetition, so that the compiler cannot keep one count.
static volatile unsigned long long zero;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;
static int submitted, next_task, finished;
static int stopping;
static unsigned long long inputs[kTasks], results[kTasks];
static int done_by[kWorkers];

static unsigned long long collatz_steps(unsigned long long n) {
  unsigned long long steps = 0;
  while (n != 1) {
    n = n % 2 ? 3 * n + 1 : n / 2;
    ++steps;
  }
  return steps;
}

static void* worker(void* arg) {
  long me = (long)arg;
  pthread_mutex_lock(&lock);
  for (;;) {
    while (next_task == submitted && !stopping) pthread_cond_wait(&work_ready, &lock);
    if (next_task == submitted) break; // stopping, nothing left
    int task = next_task++;
    pthread_mutex_unlock(&lock);
    unsigned long long r = 0;
    for (int k = 0; k < kRepeat; ++k) r = collatz_steps(inputs[task] + zero);
    pthread_mutex_lock(&lock);
    results[task] = r;
    ++done_by[me];
    if (++finished == submitted) pthread_cond_signal(&all_done);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(void) {
  pthread_t workers[kWorkers];
  for (long i = 0; i < kWorkers; ++i)
    if (pthread_create(&workers[i], NULL, worker, (void*)i) != 0) return 1;
  for (int i = 0; i < kTasks; ++i) {
    pthread_mutex_lock(&lock);
    inputs[i] = 1000000ull + 7ull * (unsigned long long)i;
    ++submitted;
    pthread_cond_signal(&work_ready);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_lock(&lock);
  while (finished < kTasks) pthread_cond_wait(&all_done, &lock);
  stopping = 1;
  pthread_cond_broadcast(&work_ready);
  pthread_mutex_unlock(&lock);
  int by_workers = 0;
  for (int i = 0; i < kWorkers; ++i) {
    pthread_join(workers[i], NULL);
    by_workers += done_by[i];
  }
  unsigned long long total = 0;
  for (int i = 0; i < kTasks; ++i) total += results[i];
  printf("pool: %d tasks, %d by the workers, %llu steps\n", kTasks, by_workers, total);
  return 0;
}
