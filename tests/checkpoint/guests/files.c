// Reads /data/in.txt and writes /data/out.txt on both sides of a checkpoint
// it asks for (tern.checkpoint() returns 0 in the run, 1 when restored).
#include <stdio.h>
#include <string.h>

__attribute__((import_module("tern"), import_name("checkpoint"))) int tern_checkpoint(void);

int main(void) {
  FILE* in = fopen("/data/in.txt", "r");
  FILE* out = fopen("/data/out.txt", "w");
  if (!in || !out) {
    perror("fopen");
    return 1;
  }
  char buf[8] = {0};
  fread(buf, 1, 4, in);
  fprintf(out, "before:%s\n", buf);
  fflush(out);
  int restored = tern_checkpoint();
  memset(buf, 0, sizeof buf);
  fread(buf, 1, 4, in);
  fprintf(out, "after(%d):%s\n", restored, buf);
  fclose(out);
  printf("done %d\n", restored);
  return 0;
}
