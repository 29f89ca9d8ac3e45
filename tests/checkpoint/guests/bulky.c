// A program with a lot of memory that computes and sleeps by turns: its
// snapshots take a while to write and to load, so checkpoint requests can
// be aimed at a restore that is still loading and at checkpoints that take
// longer than the interval between them. Fills argv[1] MiB with
// pseudo-random (incompressible) words, then runs argv[2] rounds: each
// hashes one MiB of them, prints the hash and sleeps argv[3] ms.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char** argv) {
  size_t mib = argc > 1 && atoi(argv[1]) > 0 ? (size_t)atoi(argv[1]) : 4;
  int rounds = argc > 2 ? atoi(argv[2]) : 10;
  long ms = argc > 3 ? atol(argv[3]) : 10;
  const size_t per_mib = (1u << 20) / sizeof(uint32_t);
  size_t words = mib * per_mib;
  uint32_t* m = malloc(words * sizeof(uint32_t));
  if (!m) return 2;
  uint32_t x = 12345;
  for (size_t i = 0; i < words; i++) {
    x = x * 1664525u + 1013904223u;
    m[i] = x;
  }
  printf("filled %zu MiB\n", mib);
  fflush(stdout);
  uint64_t h = 1469598103934665603ull;
  for (int r = 0; r < rounds; r++) {
    size_t base = ((size_t)r * per_mib) % words;
    for (size_t i = 0; i < per_mib; i++) h = (h ^ m[base + i]) * 1099511628211ull;
    printf("round %d %016llx\n", r, (unsigned long long)h);
    fflush(stdout);
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
  }
  printf("done\n");
  return 0;
}
