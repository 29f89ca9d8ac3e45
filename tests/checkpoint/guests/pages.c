// A 4 MiB working set, filled at the start, then rewritten one 64 KiB page
// at a time, a few bytes every round, between rounds of computation that
// write no memory: between two periodic checkpoints only a few pages
// change, which is what incremental snapshots are for (incremental.py
// checks that each link carries only those). Prints checksums.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { kPage = 65536, kPages = 64, kRounds = 256, kRoundsPerPage = 4, kWork = 2000 };

int main(void) {
  volatile uint8_t* set = malloc((size_t)kPages * kPage);
  if (!set) return 1;
  for (size_t i = 0; i < (size_t)kPages * kPage; i += 4096) set[i] = (uint8_t)(i >> 12 | 1);
  uint64_t mix = 1;
  for (int round = 0; round < kRounds; ++round) {
    volatile uint8_t* page = set + (size_t)(round / kRoundsPerPage % kPages) * kPage;
    page[round % kPage] = (uint8_t)mix;
    for (int i = 0; i < kWork; ++i) mix = mix * 6364136223846793005u + 1442695040888963407u;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < (size_t)kPages * kPage; i += 512) sum = sum * 1099511628211u + set[i];
  printf("%llu %llu\n", (unsigned long long)sum, (unsigned long long)mix);
  return 0;
}
