// Asks for its own checkpoint with the import tern.checkpoint(): the call
// returns 0 when the program continues after the checkpoint, 1 in a
// program restored from it, -1 when no checkpoint could be taken.
#include <stdio.h>

__attribute__((import_module("tern"), import_name("checkpoint"))) int tern_checkpoint(void);

int main(void) {
  unsigned long sum = 0;
  for (int i = 0; i < 1000; i++) sum = sum * 7 + (unsigned long)i;
  printf("before %lu\n", sum);
  fflush(stdout);
  int r = tern_checkpoint();
  for (int i = 0; i < 1000; i++) sum = sum * 5 + (unsigned long)i;
  printf("checkpoint returned %d, after %lu\n", r, sum);
  return 0;
}
