// 1 GiB written with small fwrite calls (64-byte records through stdio's
// buffer): measures how cheaply the runtime turns buffered writes into
// fd_write calls. Usage: fwrite OUTPUT_FILE [MiB]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fwrite OUTPUT_FILE [MiB]\n");
    return 2;
  }
  long mib = argc > 2 ? atol(argv[2]) : 1024;
  FILE* out = fopen(argv[1], "wb");
  if (!out) {
    perror(argv[1]);
    return 1;
  }
  char record[64];
  for (size_t i = 0; i < sizeof record; ++i) record[i] = (char)('a' + i % 26);
  long records = mib * 1024 * 1024 / (long)sizeof record;
  for (long i = 0; i < records; ++i) {
    record[0] = (char)i; // not a constant buffer
    if (fwrite(record, sizeof record, 1, out) != 1) {
      perror("fwrite");
      return 1;
    }
  }
  if (fclose(out) != 0) {
    perror("fclose");
    return 1;
  }
  printf("wrote %ld MiB in %ld records\n", mib, records);
  return 0;
}
