/* Call-heavy recursion: doubly recursive Fibonacci, Takeuchi's tak and
 * Ackermann's function. Almost all time goes to call/return and argument
 * passing; what an engine does per frame shows directly. */
#include "bench_util.h"

__attribute__((noinline)) static uint32_t fib(uint32_t n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

__attribute__((noinline)) static int32_t tak(int32_t x, int32_t y, int32_t z) {
  return y < x ? tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y)) : z;
}

__attribute__((noinline)) static uint32_t ack(uint32_t m, uint32_t n) {
  if (m == 0) return n + 1;
  if (n == 0) return ack(m - 1, 1);
  return ack(m - 1, ack(m, n - 1));
}

int main(void) {
  /* volatile: keep the compilers from folding the calls into constants. */
  volatile uint32_t fib_n = BENCH_SIZE(35, 16), ack_m = 2, ack_n = BENCH_SIZE(1000, 60);
  volatile int32_t tx = BENCH_SIZE(22, 12), ty = BENCH_SIZE(14, 8), tz = 6;
  uint32_t f = fib(fib_n);
  int32_t t = tak(tx, ty, tz);
  uint32_t a = 0;
  for (int i = 0; i < BENCH_SIZE(40, 3); i++) a += ack(ack_m, ack_n + (uint32_t)i);
  printf("calls fib(%u)=%u tak(%d,%d,%d)=%d ack_sum=%u\n", (unsigned)fib_n, f, (int)tx, (int)ty,
         (int)tz, t, a);
  return 0;
}
