// Prints its arguments and environment, one per line.
#include <stdio.h>
#include <string.h>

extern char** environ;

int main(int argc, char** argv) {
  printf("argc=%d\n", argc);
  size_t len = strlen(argv[0]);
  printf("argv[0] ends with .wasm: %s\n",
         len > 5 && strcmp(argv[0] + len - 5, ".wasm") == 0 ? "yes" : "no");
  for (int i = 1; i < argc; ++i) printf("argv[%d]=%s\n", i, argv[i]);
  for (char** e = environ; *e; ++e) printf("env %s\n", *e);
  return 0;
}
