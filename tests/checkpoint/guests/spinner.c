// Computes for a while (argv[1] rounds) and prints a checksum per round:
// a target for periodic and signal checkpoints that land anywhere.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 10;
  uint64_t h = 1469598103934665603ull;
  for (int r = 0; r < rounds; r++) {
    for (uint32_t i = 0; i < 3000000; i++) h = (h ^ i) * 1099511628211ull;
    printf("round %d %016llx\n", r, (unsigned long long)h);
    fflush(stdout);
  }
  return 0;
}
