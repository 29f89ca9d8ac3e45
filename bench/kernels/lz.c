/* An LZ77 compressor with hash chains (greedy parsing, 64 KiB window) and
 * its decompressor, round-tripping generated text. Hashing, unaligned byte
 * compares, short data-dependent loops and overlapping copies. */
#include "bench_util.h"

enum {
  INPUT_SIZE = BENCH_SIZE(5 << 20, 1 << 15),
  WINDOW = 1 << 16,
  HASH_BITS = 15,
  MIN_MATCH = 4,
  MAX_MATCH = 258,
  MAX_CHAIN = 16,
};

static uint32_t hash4(const uint8_t* p) {
  uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  return (v * 2654435761u) >> (32 - HASH_BITS);
}

static uint8_t* put_varint(uint8_t* out, uint32_t v) {
  while (v >= 0x80) {
    *out++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *out++ = (uint8_t)v;
  return out;
}

static const uint8_t* get_varint(const uint8_t* in, uint32_t* v) {
  uint32_t result = 0;
  for (int shift = 0;; shift += 7) {
    uint8_t b = *in++;
    result |= (uint32_t)(b & 0x7F) << shift;
    if (!(b & 0x80)) break;
  }
  *v = result;
  return in;
}

/* Sequence format: varint literal count, the literals, varint match length
 * (0 ends the stream), then a 2-byte little-endian distance - 1. */
static uint32_t compress(const uint8_t* in, uint32_t n, uint8_t* out) {
  static int32_t head[1 << HASH_BITS];
  static int32_t prev[WINDOW];
  for (int i = 0; i < (1 << HASH_BITS); i++) head[i] = -1;
  uint8_t* o = out;
  uint32_t literal_start = 0, pos = 0;
  while (pos + MIN_MATCH <= n) {
    uint32_t h = hash4(in + pos);
    uint32_t best_len = 0, best_dist = 0;
    int32_t cand = head[h];
    uint32_t limit = n - pos < MAX_MATCH ? n - pos : MAX_MATCH;
    for (int chain = 0; chain < MAX_CHAIN && cand >= 0 && pos - (uint32_t)cand < WINDOW; chain++) {
      const uint8_t* a = in + cand;
      const uint8_t* b = in + pos;
      uint32_t len = 0;
      while (len < limit && a[len] == b[len]) len++;
      if (len > best_len) {
        best_len = len;
        best_dist = pos - (uint32_t)cand;
        if (len == limit) break;
      }
      cand = prev[cand & (WINDOW - 1)];
    }
    if (best_len < MIN_MATCH) {
      prev[pos & (WINDOW - 1)] = head[h];
      head[h] = (int32_t)pos;
      pos++;
      continue;
    }
    o = put_varint(o, pos - literal_start);
    memcpy(o, in + literal_start, pos - literal_start);
    o += pos - literal_start;
    o = put_varint(o, best_len);
    *o++ = (uint8_t)(best_dist - 1);
    *o++ = (uint8_t)((best_dist - 1) >> 8);
    for (uint32_t end = pos + best_len; pos < end; pos++) {
      if (pos + MIN_MATCH <= n) {
        uint32_t hp = hash4(in + pos);
        prev[pos & (WINDOW - 1)] = head[hp];
        head[hp] = (int32_t)pos;
      }
    }
    literal_start = pos;
  }
  o = put_varint(o, n - literal_start);
  memcpy(o, in + literal_start, n - literal_start);
  o += n - literal_start;
  o = put_varint(o, 0);
  return (uint32_t)(o - out);
}

static uint32_t decompress(const uint8_t* in, uint8_t* out) {
  uint8_t* o = out;
  for (;;) {
    uint32_t literals, len;
    in = get_varint(in, &literals);
    memcpy(o, in, literals);
    o += literals;
    in += literals;
    in = get_varint(in, &len);
    if (len == 0) break;
    uint32_t dist = (uint32_t)in[0] + ((uint32_t)in[1] << 8) + 1;
    in += 2;
    const uint8_t* from = o - dist;
    for (uint32_t i = 0; i < len; i++) o[i] = from[i]; /* may overlap */
    o += len;
  }
  return (uint32_t)(o - out);
}

/* Text from a small vocabulary with a skewed word choice: compressible like
 * prose or logs, but not trivially. */
static void make_input(uint8_t* buf, uint32_t n) {
  static const char* words[] = {"the",    "wasm",   "runtime", "stack",  "frame",    "memory",
                                "of",     "a",      "and",     "to",     "module",   "table",
                                "global", "import", "export",  "thread", "snapshot", "restore",
                                "point",  "is",     "in",      "with",   "call",     "loop"};
  const uint32_t nwords = sizeof words / sizeof words[0];
  Rng rng = rng_seed(5);
  uint32_t pos = 0;
  while (pos < n) {
    uint32_t r = rng_below(&rng, nwords * nwords);
    uint32_t w = nwords - 1 - (uint32_t)(r % nwords) * (uint32_t)(r / nwords) / nwords;
    const char* word = words[w % nwords];
    for (const char* c = word; *c && pos < n; c++) buf[pos++] = (uint8_t)*c;
    if (pos < n) buf[pos++] = rng_below(&rng, 16) == 0 ? '\n' : ' ';
    if (rng_below(&rng, 64) == 0)
      for (int d = 0; d < 3 && pos < n; d++) buf[pos++] = (uint8_t)('0' + rng_below(&rng, 10));
  }
}

int main(void) {
  uint8_t* input = xmalloc(INPUT_SIZE);
  uint8_t* packed = xmalloc(INPUT_SIZE + INPUT_SIZE / 64 + 64);
  uint8_t* unpacked = xmalloc(INPUT_SIZE);
  make_input(input, INPUT_SIZE);
  uint32_t packed_size = compress(input, INPUT_SIZE, packed);
  uint32_t unpacked_size = decompress(packed, unpacked);
  if (unpacked_size != INPUT_SIZE || memcmp(input, unpacked, INPUT_SIZE) != 0) {
    printf("lz round trip failed\n");
    return 1;
  }
  uint64_t h = 0;
  for (uint32_t i = 0; i < packed_size; i += 64) h = mix64(h, packed[i]);
  printf("lz input=%d packed=%u checksum=%016" PRIx64 "\n", INPUT_SIZE, packed_size, h);
  free(input);
  free(packed);
  free(unpacked);
  return 0;
}
