// stdio from several threads at once (guest/src/pthread.c locks each FILE):
// four threads print 500 lines each to stdout with printf, fputs and fwrite
// in turn while a fifth waits in fgets on stdin. Every line must come out
// whole, and the waiting reader must not hold the printers up: the test
// feeds stdin only after "printers done" (flushed) has come out.
#include <pthread.h>
#include <stdio.h>
#include <string.h>

enum { kPrinters = 4, kLines = 500 };

static char got[64];

static void* printer(void* arg) {
  const long t = (long)arg;
  char line[96];
  for (int i = 0; i < kLines; ++i) {
    if (i % 3 == 0) {
      printf("thread %ld line %d: printf, one call with its arguments\n", t, i);
    } else {
      snprintf(line, sizeof line, "thread %ld line %d: %s\n", t, i,
               i % 3 == 1 ? "fputs of a line formatted before" : "fwrite of the same");
      if (i % 3 == 1)
        fputs(line, stdout);
      else
        fwrite(line, 1, strlen(line), stdout);
    }
  }
  return NULL;
}

static void* reader(void* arg) {
  (void)arg;
  if (!fgets(got, sizeof got, stdin)) strcpy(got, "nothing\n");
  return NULL;
}

int main(void) {
  pthread_t printers[kPrinters], waiting;
  pthread_create(&waiting, NULL, reader, NULL);
  for (long t = 0; t < kPrinters; ++t) pthread_create(&printers[t], NULL, printer, (void*)t);
  for (int t = 0; t < kPrinters; ++t) pthread_join(printers[t], NULL);
  printf("printers done\n");
  fflush(stdout);
  pthread_join(waiting, NULL);
  printf("reader got %s", got);
  return 0;
}
