/* Dense double-precision matrix multiply, C += A * B (PolyBench gemm shape:
 * i-k-j loop order), repeated. Floating point, cache-friendly streaming. */
#include "bench_util.h"

enum { N = BENCH_SIZE(256, 24), ROUNDS = BENCH_SIZE(24, 3) };

static void gemm(int n, const double* a, const double* b, double* c) {
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < n; k++) {
      double aik = a[i * n + k];
      for (int j = 0; j < n; j++) c[i * n + j] += aik * b[k * n + j];
    }
  }
}

int main(void) {
  double* a = xmalloc(sizeof(double) * N * N);
  double* b = xmalloc(sizeof(double) * N * N);
  double* c = xmalloc(sizeof(double) * N * N);
  Rng rng = rng_seed(1);
  for (int i = 0; i < N * N; i++) {
    a[i] = rng_unit(&rng) - 0.5;
    b[i] = rng_unit(&rng) - 0.5;
    c[i] = 0.0;
  }
  for (int r = 0; r < ROUNDS; r++) {
    gemm(N, a, b, c);
    /* Feed the result back so no round can be skipped. */
    double scale = 1.0 / (double)N;
    for (int i = 0; i < N * N; i++) a[i] = c[i] * scale + a[i] * 0.5;
  }
  double trace = 0.0;
  uint64_t h = 0;
  for (int i = 0; i < N; i++) trace += c[i * N + i];
  for (int i = 0; i < N * N; i++) h = mix_double(h, c[i]);
  printf("matmul n=%d rounds=%d trace=%.9e checksum=%016" PRIx64 "\n", N, ROUNDS, trace, h);
  free(a);
  free(b);
  free(c);
  return 0;
}
