/* 2D stencils as in PolyBench: jacobi-2d (5-point, two buffers) followed by
 * seidel-2d (9-point, in place, loop-carried dependence). Floating point,
 * memory streaming over a grid that does not fit in L1. */
#include "bench_util.h"

enum {
  N = BENCH_SIZE(600, 40),
  JACOBI_STEPS = BENCH_SIZE(120, 4),
  SEIDEL_STEPS = BENCH_SIZE(20, 2)
};

static void jacobi(int n, int steps, double* a, double* b) {
  for (int t = 0; t < steps; t++) {
    for (int i = 1; i < n - 1; i++)
      for (int j = 1; j < n - 1; j++)
        b[i * n + j] = 0.2 * (a[i * n + j] + a[i * n + j - 1] + a[i * n + j + 1] +
                              a[(i + 1) * n + j] + a[(i - 1) * n + j]);
    for (int i = 1; i < n - 1; i++)
      for (int j = 1; j < n - 1; j++)
        a[i * n + j] = 0.2 * (b[i * n + j] + b[i * n + j - 1] + b[i * n + j + 1] +
                              b[(i + 1) * n + j] + b[(i - 1) * n + j]);
  }
}

static void seidel(int n, int steps, double* a) {
  for (int t = 0; t < steps; t++)
    for (int i = 1; i < n - 1; i++)
      for (int j = 1; j < n - 1; j++)
        a[i * n + j] = (a[(i - 1) * n + j - 1] + a[(i - 1) * n + j] + a[(i - 1) * n + j + 1] +
                        a[i * n + j - 1] + a[i * n + j] + a[i * n + j + 1] +
                        a[(i + 1) * n + j - 1] + a[(i + 1) * n + j] + a[(i + 1) * n + j + 1]) /
                       9.0;
}

int main(void) {
  double* a = xmalloc(sizeof(double) * N * N);
  double* b = xmalloc(sizeof(double) * N * N);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      a[i * N + j] = ((double)i * (j + 2) + 2) / N;
      b[i * N + j] = ((double)i * (j + 3) + 3) / N;
    }
  jacobi(N, JACOBI_STEPS, a, b);
  seidel(N, SEIDEL_STEPS, a);
  double sum = 0.0;
  uint64_t h = 0;
  for (int i = 0; i < N * N; i++) {
    sum += a[i];
    h = mix_double(h, a[i]);
  }
  printf("stencil n=%d sum=%.9e checksum=%016" PRIx64 "\n", N, sum, h);
  free(a);
  free(b);
  return 0;
}
