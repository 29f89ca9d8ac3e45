// Prints a line, then traps (unreachable) two named calls deep; or, with
// argument "abort", calls abort().
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static void deliberately_trap(int depth) {
  if (depth == 0) __builtin_trap();
  printf("never printed %d\n", depth);
}

__attribute__((noinline)) static void call_the_trap(void) {
  deliberately_trap(0);
}

int main(int argc, char** argv) {
  printf("about to trap\n");
  fflush(stdout);
  if (argc > 1 && strcmp(argv[1], "abort") == 0) abort();
  call_the_trap();
  return 0;
}
