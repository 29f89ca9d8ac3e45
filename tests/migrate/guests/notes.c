// Files across a migration: reads /data/in.txt and writes /data/out.txt,
// prints "ready", then waits for a line on stdin (blocked in a host call,
// where the test moves it), and writes the rest with that line.
#include <stdio.h>
#include <string.h>

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
  printf("ready\n");
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin)) return 2;
  memset(buf, 0, sizeof buf);
  fread(buf, 1, 4, in);
  fprintf(out, "after:%s %s", buf, line);
  fclose(out);
  printf("done\n");
  return 0;
}
