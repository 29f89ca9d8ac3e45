/* The demo's program (scripts/demo.sh): counts primes block by block,
 * printing one line per block and appending it to a results file, with a
 * running checksum. Recursion, a loop nest, floating point and file I/O, so
 * a checkpoint taken anywhere in the middle carries frames, memory and an
 * open file with it.
 *
 *   tern run --dir OUT::/out primes.wasm [BLOCKS]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { BLOCK = 20000 };

static int is_prime(uint32_t n) {
  if (n < 2) return 0;
  if (n % 2 == 0) return n == 2;
  uint32_t limit = (uint32_t)sqrt((double)n);
  for (uint32_t d = 3; d <= limit; d += 2)
    if (n % d == 0) return 0;
  return 1;
}

/* Counts the primes of [lo, hi) by halving the range: recursion gives the
 * checkpoint a deep stack to carry. */
static uint32_t count_primes(uint32_t lo, uint32_t hi) {
  if (hi - lo <= 64) {
    uint32_t c = 0;
    for (uint32_t n = lo; n < hi; n++) c += is_prime(n);
    return c;
  }
  uint32_t mid = lo + (hi - lo) / 2;
  return count_primes(lo, mid) + count_primes(mid, hi);
}

int main(int argc, char** argv) {
  int blocks = argc > 1 ? atoi(argv[1]) : 12;
  FILE* out = fopen("/out/primes.txt", "w");
  if (!out) {
    perror("/out/primes.txt");
    return 1;
  }
  uint64_t checksum = 1469598103934665603ull;
  uint32_t total = 0;
  for (int b = 0; b < blocks; b++) {
    uint32_t lo = (uint32_t)b * BLOCK, hi = lo + BLOCK;
    uint32_t c = count_primes(lo, hi);
    total += c;
    checksum = (checksum ^ c) * 1099511628211ull;
    printf("block %2d [%7u, %7u): %5u primes, %6u so far\n", b, lo, hi, c, total);
    fprintf(out, "%u %u %u\n", lo, hi, c);
    fflush(stdout);
  }
  fclose(out);
  printf("total %u primes below %u, checksum %016llx\n", total, (uint32_t)blocks * BLOCK,
         (unsigned long long)checksum);
  return 0;
}
