/* Quicksort (median-of-three, insertion sort for short ranges) and top-down
 * mergesort of pseudo-random 32-bit integers. Branchy, recursive, memory
 * bound once the array leaves the caches. */
#include "bench_util.h"

enum { N = BENCH_SIZE(1 << 20, 1 << 12), ROUNDS = 1, SMALL = 16 };

static void insertion_sort(int32_t* v, int32_t lo, int32_t hi) {
  for (int32_t i = lo + 1; i <= hi; i++) {
    int32_t x = v[i];
    int32_t j = i - 1;
    while (j >= lo && v[j] > x) {
      v[j + 1] = v[j];
      j--;
    }
    v[j + 1] = x;
  }
}

static inline void swap(int32_t* v, int32_t i, int32_t j) {
  int32_t t = v[i];
  v[i] = v[j];
  v[j] = t;
}

static void quicksort(int32_t* v, int32_t lo, int32_t hi) {
  while (hi - lo > SMALL) {
    int32_t mid = lo + (hi - lo) / 2;
    if (v[mid] < v[lo]) swap(v, mid, lo);
    if (v[hi] < v[lo]) swap(v, hi, lo);
    if (v[hi] < v[mid]) swap(v, hi, mid);
    int32_t pivot = v[mid];
    int32_t i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) swap(v, i++, j--);
    }
    /* Recurse into the smaller half, loop on the larger: bounded depth. */
    if (j - lo < hi - i) {
      quicksort(v, lo, j);
      lo = i;
    } else {
      quicksort(v, i, hi);
      hi = j;
    }
  }
  insertion_sort(v, lo, hi);
}

static void merge_sort(int32_t* v, int32_t* tmp, int32_t lo, int32_t hi) {
  if (hi - lo <= SMALL) {
    insertion_sort(v, lo, hi);
    return;
  }
  int32_t mid = lo + (hi - lo) / 2;
  merge_sort(v, tmp, lo, mid);
  merge_sort(v, tmp, mid + 1, hi);
  int32_t i = lo, j = mid + 1, k = lo;
  while (i <= mid && j <= hi) tmp[k++] = v[i] <= v[j] ? v[i++] : v[j++];
  while (i <= mid) tmp[k++] = v[i++];
  while (j <= hi) tmp[k++] = v[j++];
  memcpy(v + lo, tmp + lo, sizeof(int32_t) * (size_t)(hi - lo + 1));
}

static uint64_t check_sorted(const int32_t* v, int32_t n, const char* what) {
  uint64_t h = 0;
  for (int32_t i = 0; i < n; i++) {
    if (i > 0 && v[i - 1] > v[i]) {
      printf("%s: not sorted at %d\n", what, (int)i);
      exit(1);
    }
    if ((i & 1023) == 0) h = mix64(h, (uint32_t)v[i]);
  }
  return h;
}

int main(void) {
  int32_t* v = xmalloc(sizeof(int32_t) * N);
  int32_t* tmp = xmalloc(sizeof(int32_t) * N);
  Rng rng = rng_seed(42);
  uint64_t h = 0;
  for (int r = 0; r < ROUNDS; r++) {
    for (int32_t i = 0; i < N; i++) v[i] = (int32_t)(uint32_t)rng_next(&rng);
    quicksort(v, 0, N - 1);
    h = mix64(h, check_sorted(v, N, "quicksort"));
    /* Few distinct keys: exercises the equal-key paths. */
    for (int32_t i = 0; i < N; i++) v[i] = (int32_t)rng_below(&rng, 1000) - 500;
    merge_sort(v, tmp, 0, N - 1);
    h = mix64(h, check_sorted(v, N, "mergesort"));
    for (int32_t i = 0; i < N; i++) v[i] = (int32_t)(uint32_t)rng_next(&rng);
    merge_sort(v, tmp, 0, N - 1);
    h = mix64(h, check_sorted(v, N, "mergesort"));
  }
  printf("sort n=%d rounds=%d checksum=%016" PRIx64 "\n", N, ROUNDS, h);
  free(v);
  free(tmp);
  return 0;
}
