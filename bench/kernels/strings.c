/* String kernels: Levenshtein edit distance between pseudo-random strings
 * (2D dynamic programming with min-of-three) and Boyer-Moore-Horspool
 * search for many patterns in a generated text. Byte loads, compares and
 * data-dependent branches. */
#include "bench_util.h"

enum {
  EDIT_LEN = BENCH_SIZE(1500, 120),
  EDIT_PAIRS = BENCH_SIZE(24, 2),
  TEXT_LEN = BENCH_SIZE(1 << 20, 1 << 13),
  PATTERNS = BENCH_SIZE(48, 4)
};

static uint32_t min3(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t m = a < b ? a : b;
  return m < c ? m : c;
}

static uint32_t edit_distance(const uint8_t* s, uint32_t n, const uint8_t* t, uint32_t m,
                              uint32_t* row) {
  for (uint32_t j = 0; j <= m; j++) row[j] = j;
  for (uint32_t i = 1; i <= n; i++) {
    uint32_t diag = row[0];
    row[0] = i;
    for (uint32_t j = 1; j <= m; j++) {
      uint32_t up = row[j];
      row[j] = min3(up + 1, row[j - 1] + 1, diag + (s[i - 1] != t[j - 1]));
      diag = up;
    }
  }
  return row[m];
}

/* Number of (possibly overlapping) occurrences of pat in text. */
static uint32_t horspool_count(const uint8_t* text, uint32_t n, const uint8_t* pat, uint32_t m) {
  uint32_t shift[256];
  for (int c = 0; c < 256; c++) shift[c] = m;
  for (uint32_t i = 0; i + 1 < m; i++) shift[pat[i]] = m - 1 - i;
  uint32_t count = 0;
  for (uint32_t pos = 0; pos + m <= n; pos += shift[text[pos + m - 1]]) {
    uint32_t k = m;
    while (k > 0 && text[pos + k - 1] == pat[k - 1]) k--;
    if (k == 0) count++;
  }
  return count;
}

static void random_text(Rng* rng, uint8_t* out, uint32_t n, uint32_t alphabet) {
  for (uint32_t i = 0; i < n; i++) out[i] = (uint8_t)('a' + rng_below(rng, alphabet));
}

int main(void) {
  Rng rng = rng_seed(11);
  uint8_t* s = xmalloc(EDIT_LEN);
  uint8_t* t = xmalloc(EDIT_LEN);
  uint32_t* row = xmalloc(sizeof(uint32_t) * (EDIT_LEN + 1));
  uint64_t h = 0;
  uint32_t distance_sum = 0;
  for (int p = 0; p < EDIT_PAIRS; p++) {
    random_text(&rng, s, EDIT_LEN, 4);
    /* t is a mutated copy of s, so distances are far from the maximum. */
    memcpy(t, s, EDIT_LEN);
    for (int k = 0; k < EDIT_LEN / 8; k++) t[rng_below(&rng, EDIT_LEN)] = (uint8_t)('a' + k % 4);
    uint32_t d = edit_distance(s, EDIT_LEN, t, EDIT_LEN - (uint32_t)p, row);
    distance_sum += d;
    h = mix64(h, d);
  }
  uint8_t* text = xmalloc(TEXT_LEN);
  random_text(&rng, text, TEXT_LEN, 6);
  uint32_t found = 0;
  for (int p = 0; p < PATTERNS; p++) {
    uint32_t m = 4 + (uint32_t)p % 12;
    uint32_t at = rng_below(&rng, TEXT_LEN - m);
    found += horspool_count(text, TEXT_LEN, text + at, m);
    h = mix64(h, found);
  }
  printf("strings edit_sum=%u matches=%u checksum=%016" PRIx64 "\n", distance_sum, found, h);
  free(s);
  free(t);
  free(row);
  free(text);
  return 0;
}
