/* Shared helpers for the benchmark kernels: a deterministic PRNG and a
 * checksum mixer. Every kernel builds both natively and for wasm32, so all
 * values that reach the output use fixed-width types (long and size_t differ
 * between the two targets). */
#ifndef TERN_BENCH_UTIL_H
#define TERN_BENCH_UTIL_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BENCH_SIZE(full, small): the benchmark's size, or a small one when built
 * with -DTERN_BENCH_SMALL (the differential checkpoint tests run each
 * kernel dozens of times under the interpreter). */
#ifdef TERN_BENCH_SMALL
#define BENCH_SIZE(full, small) (small)
#else
#define BENCH_SIZE(full, small) (full)
#endif

/* xorshift64*: small, fast and identical on every target. */
typedef struct {
  uint64_t state;
} Rng;

static inline Rng rng_seed(uint64_t seed) {
  Rng r = {seed ? seed : 0x9E3779B97F4A7C15ull};
  return r;
}

static inline uint64_t rng_next(Rng* r) {
  uint64_t x = r->state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform value in [0, bound) (bound small enough that modulo bias is
 * irrelevant for a benchmark). */
static inline uint32_t rng_below(Rng* r, uint32_t bound) {
  return (uint32_t)((rng_next(r) >> 32) % bound);
}

/* Double in [0, 1). */
static inline double rng_unit(Rng* r) {
  return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Folds a value into a running checksum (splitmix64 finaliser). */
static inline uint64_t mix64(uint64_t h, uint64_t v) {
  uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t mix_double(uint64_t h, double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  return mix64(h, bits);
}

static inline void* xmalloc(size_t n) {
  void* p = malloc(n);
  if (!p) {
    fprintf(stderr, "out of memory (%u bytes)\n", (unsigned)n);
    exit(2);
  }
  return p;
}

#endif
