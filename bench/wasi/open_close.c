// 100,000 open/close pairs on one file in a preopened directory: measures
// path resolution and fd-table cost per path_open + fd_close.
// Usage: open_close DIRECTORY [COUNT]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: open_close DIRECTORY [COUNT]\n");
    return 2;
  }
  long count = argc > 2 ? atol(argv[2]) : 100000;
  char path[4096];
  snprintf(path, sizeof path, "%s/file.txt", argv[1]);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) != 0) {
    perror(path);
    return 1;
  }
  for (long i = 0; i < count; ++i) {
    fd = open(path, O_RDONLY);
    if (fd < 0 || close(fd) != 0) {
      perror("open/close");
      return 1;
    }
  }
  printf("%ld open/close pairs\n", count);
  return 0;
}
