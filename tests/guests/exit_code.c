// Exits with the code given as argv[1]; "proc_exit" as argv[2] calls
// proc_exit directly instead of returning from main.
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

int main(int argc, char** argv) {
  int code = argc > 1 ? atoi(argv[1]) : 0;
  if (argc > 2 && strcmp(argv[2], "proc_exit") == 0) __wasi_proc_exit((__wasi_exitcode_t)code);
  return code;
}
