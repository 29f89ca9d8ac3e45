/* Binary trees (allocation-heavy, after the Benchmarks Game task): build
 * many complete trees with malloc, walk them, free them, while one
 * long-lived tree stays allocated. Measures the allocator (compiled into the
 * wasm module from wasi-libc, glibc natively) plus pointer chasing. */
#include "bench_util.h"

enum { MIN_DEPTH = 4, MAX_DEPTH = BENCH_SIZE(14, 8) };

typedef struct Node {
  struct Node* left;
  struct Node* right;
  int32_t value;
} Node;

static Node* build(int depth, int32_t value) {
  Node* n = xmalloc(sizeof(Node));
  n->value = value;
  if (depth > 0) {
    n->left = build(depth - 1, 2 * value - 1);
    n->right = build(depth - 1, 2 * value);
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

static int64_t check(const Node* n) {
  int64_t sum = n->value;
  if (n->left) sum += check(n->left) - check(n->right);
  return sum + 1;
}

static void release(Node* n) {
  if (n->left) {
    release(n->left);
    release(n->right);
  }
  free(n);
}

int main(void) {
  uint64_t h = 0;
  Node* stretch = build(MAX_DEPTH + 1, 0);
  h = mix64(h, (uint64_t)check(stretch));
  release(stretch);
  Node* long_lived = build(MAX_DEPTH, 0);
  for (int depth = MIN_DEPTH; depth <= MAX_DEPTH; depth += 2) {
    int32_t iterations = 1 << (MAX_DEPTH - depth + MIN_DEPTH);
    int64_t total = 0;
    for (int32_t i = 1; i <= iterations; i++) {
      Node* a = build(depth, i);
      Node* b = build(depth, -i);
      total += check(a) + check(b);
      release(a);
      release(b);
    }
    h = mix64(h, (uint64_t)total);
  }
  h = mix64(h, (uint64_t)check(long_lived));
  release(long_lived);
  printf("bintrees max_depth=%d checksum=%016" PRIx64 "\n", MAX_DEPTH, h);
  return 0;
}
