// MiB of memory filled with pseudo-random bytes (incompressible, as a
// program's data often is), then a checkpoint it asks for itself; restored
// (tern.checkpoint() returns 1), it reads one byte of every page and
// prints a checksum. bench/restore/lazy.py times the restore of its
// snapshot, eager and lazy.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((import_module("tern"), import_name("checkpoint"))) int tern_checkpoint(void);

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 16;
  const size_t words = mib * (1 << 20) / 8;
  uint64_t* data = malloc(words * 8);
  if (!data) return 1;
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < words; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data[i] = x;
  }
  if (tern_checkpoint() != 1) return 0; // the run ends at its checkpoint
  uint64_t sum = 0;
  for (size_t i = 0; i < words; i += 65536 / 8) sum += data[i];
  printf("%zu MiB, checksum %llu\n", mib, (unsigned long long)sum);
  return 0;
}
