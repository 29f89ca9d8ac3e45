// Asks for its own checkpoint ROUNDS times (`asks_often ROUNDS`), writing a
// few pages of a 1 MiB buffer before each: with --incremental every call
// adds a link carrying those pages. After each call it prints what the call
// returned (0 when the program continues, 1 in a program restored from that
// checkpoint) and a checksum of the whole buffer.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((import_module("tern"), import_name("checkpoint"))) int tern_checkpoint(void);

enum { kSize = 1 << 20, kPage = 65536 };
static uint8_t buffer[kSize];

static uint32_t checksum(void) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < kSize; i++) h = (h ^ buffer[i]) * 16777619u;
  return h;
}

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? atoi(argv[1]) : 5;
  uint32_t x = 12345;
  for (int r = 0; r < rounds; r++) {
    // Three pages per round, at places that move.
    for (int p = 0; p < 3; p++) {
      uint8_t* page = buffer + (size_t)((r * 5 + p * 3) % (kSize / kPage)) * kPage;
      for (int i = 0; i < kPage; i++) page[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    }
    int got = tern_checkpoint();
    printf("checkpoint %d returned %d, checksum %08x\n", r, got, checksum());
    fflush(stdout);
  }
  printf("done, checksum %08x\n", checksum());
  return 0;
}
