// Numbers the lines it reads from stdin, keeping a running checksum: blocked
// in fd_read most of the time; a restored reader continues the numbering.
#include <stdio.h>
#include <string.h>

int main(void) {
  char line[256];
  unsigned n = 0, sum = 7;
  while (fgets(line, sizeof line, stdin)) {
    n++;
    for (char* c = line; *c; c++) sum = sum * 33 + (unsigned char)*c;
    printf("%u: %s", n, line);
    fflush(stdout);
  }
  printf("%u lines, checksum %08x\n", n, sum);
  return 0;
}
