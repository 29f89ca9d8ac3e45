/* The smallest WASI program: what each runner costs before a kernel does any
 * work (process start, module load, compilation, instantiation). Reported
 * below the table, not part of the geomean. */
#include <stdio.h>

int main(void) {
  puts("startup ok");
  return 0;
}
