// A spawned thread ends the whole program while the main thread is blocked
// in pthread_join (and a third thread waits on a condition variable for
// ever): `exit N` calls exit(N) (proc_exit), `trap` executes unreachable,
// `main-returns` has main return 5 while both threads wait.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static pthread_cond_t printed_cond = PTHREAD_COND_INITIALIZER;
static int printed; // main has printed its line: the program may end now
static const char* how;
static int code;

static void* wait_for_ever(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) pthread_cond_wait(&never, &lock);
  return NULL;
}

static void* end_program(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  while (!printed) pthread_cond_wait(&printed_cond, &lock);
  pthread_mutex_unlock(&lock);
  if (strcmp(how, "exit") == 0) exit(code);
  if (strcmp(how, "trap") == 0) __builtin_trap();
  return wait_for_ever(NULL);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  how = argv[1];
  code = argc > 2 ? atoi(argv[2]) : 0;
  pthread_t waiter, ender;
  if (pthread_create(&waiter, NULL, wait_for_ever, NULL) != 0) return 1;
  if (pthread_create(&ender, NULL, end_program, NULL) != 0) return 1;
  printf("threads started\n");
  fflush(stdout);
  pthread_mutex_lock(&lock);
  printed = 1;
  pthread_cond_signal(&printed_cond);
  pthread_mutex_unlock(&lock);
  if (strcmp(how, "main-returns") == 0) return 5;
  pthread_join(ender, NULL);
  printf("not reached\n");
  return 0;
}
