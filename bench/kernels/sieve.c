/* Sieve of Eratosthenes over a byte array, repeated, plus a count of twin
 * primes. Strided stores across a buffer larger than the caches. */
#include "bench_util.h"

enum { LIMIT = BENCH_SIZE(8000000, 60000), ROUNDS = BENCH_SIZE(6, 2) };

static uint32_t sieve(uint8_t* composite, uint32_t limit, uint32_t* twins) {
  memset(composite, 0, limit + 1);
  composite[0] = composite[1] = 1;
  for (uint32_t i = 2; i * i <= limit; i++)
    if (!composite[i])
      for (uint32_t j = i * i; j <= limit; j += i) composite[j] = 1;
  uint32_t count = 0;
  *twins = 0;
  for (uint32_t i = 2; i <= limit; i++) {
    if (!composite[i]) {
      count++;
      if (i >= 4 && !composite[i - 2]) ++*twins;
    }
  }
  return count;
}

int main(void) {
  uint8_t* composite = xmalloc(LIMIT + 1);
  uint32_t count = 0, twins = 0;
  uint64_t h = 0;
  for (int r = 0; r < ROUNDS; r++) {
    /* A different limit each round so the rounds cannot be merged. */
    count = sieve(composite, LIMIT - (uint32_t)r, &twins);
    h = mix64(mix64(h, count), twins);
  }
  printf("sieve limit=%d primes=%u twins=%u checksum=%016" PRIx64 "\n", LIMIT, count, twins, h);
  free(composite);
  return 0;
}
