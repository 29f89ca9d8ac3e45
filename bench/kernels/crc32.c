/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), both the classic
 * byte-at-a-time table walk and slicing-by-4, over a pseudo-random buffer.
 * Table lookups, shifts and xors on a dependent chain. */
#include "bench_util.h"

enum { BUF_SIZE = BENCH_SIZE(1 << 20, 1 << 14), ROUNDS = BENCH_SIZE(64, 4) };

static uint32_t table[4][256];

static void make_tables(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int t = 1; t < 4; t++)
      table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

static uint32_t crc32_bytewise(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = table[0][(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

static uint32_t crc32_slice4(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
  while (n >= 4) {
    crc ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    crc = table[3][crc & 0xFF] ^ table[2][(crc >> 8) & 0xFF] ^ table[1][(crc >> 16) & 0xFF] ^
          table[0][crc >> 24];
    p += 4;
    n -= 4;
  }
  while (n--) crc = table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

int main(void) {
  make_tables();
  /* Standard check value: CRC-32 of "123456789" is 0xCBF43926. */
  if (crc32_bytewise(0, (const uint8_t*)"123456789", 9) != 0xCBF43926u ||
      crc32_slice4(0, (const uint8_t*)"123456789", 9) != 0xCBF43926u) {
    printf("crc32 self-check failed\n");
    return 1;
  }
  uint8_t* buf = xmalloc(BUF_SIZE);
  Rng rng = rng_seed(3);
  for (int i = 0; i < BUF_SIZE; i++) buf[i] = (uint8_t)(rng_next(&rng) >> 56);
  uint32_t a = 0, b = 0;
  for (int r = 0; r < ROUNDS; r++) {
    a = crc32_bytewise(a, buf, BUF_SIZE);
    b = crc32_slice4(b, buf, BUF_SIZE);
    buf[r] ^= (uint8_t)a; /* make every round's input differ */
  }
  printf("crc32 bytes=%d rounds=%d bytewise=%08x slice4=%08x\n", BUF_SIZE, ROUNDS, a, b);
  free(buf);
  return 0;
}
