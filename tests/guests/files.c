// File I/O under the preopen /data: writes, seeks, pread/pwrite, truncate,
// append, rename, links, symlinks, times, and directory listings (also one
// large enough to take several fd_readdir calls). Prints one line per
// check; leaves known files behind for the test to inspect.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures = 0;

static void check(const char* what, int ok) {
  printf("%s: %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) {
    printf("  errno %d (%s)\n", errno, strerror(errno));
    ++failures;
  }
}

static int compare_names(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

// The names in `dir`, sorted, without "." and "..", joined by spaces.
static void list(const char* dir, char* out, size_t size) {
  char* names[64];
  int n = 0;
  DIR* d = opendir(dir);
  if (!d) {
    snprintf(out, size, "opendir failed: %s", strerror(errno));
    return;
  }
  struct dirent* e;
  while ((e = readdir(d)) && n < 64) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], compare_names);
  out[0] = 0;
  for (int i = 0; i < n; ++i) {
    if (i) strncat(out, " ", size - strlen(out) - 1);
    strncat(out, names[i], size - strlen(out) - 1);
    free(names[i]);
  }
}

static void seeks_and_positional_io(void) {
  int fd = open("/data/sub/a.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
  check("open a.txt", fd >= 0);
  check("write 10 bytes", write(fd, "0123456789", 10) == 10);
  char buf[16] = {0};
  check("seek set 2", lseek(fd, 2, SEEK_SET) == 2);
  check("read 234", read(fd, buf, 3) == 3 && memcmp(buf, "234", 3) == 0);
  check("seek end -2", lseek(fd, -2, SEEK_END) == 8);
  check("read 89", read(fd, buf, 5) == 2 && memcmp(buf, "89", 2) == 0);
  check("tell 10", lseek(fd, 0, SEEK_CUR) == 10);
  check("pwrite AB at 4", pwrite(fd, "AB", 2, 4) == 2);
  memset(buf, 0, sizeof buf);
  check("pread all", pread(fd, buf, 16, 0) == 10 && strcmp(buf, "0123AB6789") == 0);
  check("position unchanged by pread/pwrite", lseek(fd, 0, SEEK_CUR) == 10);
  check("ftruncate 6", ftruncate(fd, 6) == 0);
  struct stat st;
  check("fstat size 6", fstat(fd, &st) == 0 && st.st_size == 6 && S_ISREG(st.st_mode));
  check("fsync", fsync(fd) == 0);
  check("fdatasync", fdatasync(fd) == 0);
  check("close", close(fd) == 0);
  check("read closed fd is EBADF", read(fd, buf, 1) < 0 && errno == EBADF);
}

static void append_and_rename(void) {
  int fd = open("/data/sub/a.txt", O_WRONLY | O_APPEND);
  check("open append", fd >= 0 && (fcntl(fd, F_GETFL) & O_APPEND));
  lseek(fd, 0, SEEK_SET);
  check("append xy", write(fd, "xy", 2) == 2);
  close(fd);
  struct stat st;
  check("stat size 8", stat("/data/sub/a.txt", &st) == 0 && st.st_size == 8);
  check("rename a.txt b.txt", rename("/data/sub/a.txt", "/data/sub/b.txt") == 0);
  check("a.txt is gone", access("/data/sub/a.txt", F_OK) != 0 && errno == ENOENT);
  check("open missing is ENOENT", open("/data/nope", O_RDONLY) < 0 && errno == ENOENT);
  check("exclusive create of existing is EEXIST",
        open("/data/sub/b.txt", O_WRONLY | O_CREAT | O_EXCL, 0644) < 0 && errno == EEXIST);
}

static void links_and_times(void) {
  char buf[64] = {0};
  check("symlink", symlink("b.txt", "/data/sub/link") == 0);
  check("readlink",
        readlink("/data/sub/link", buf, sizeof buf) == 5 && memcmp(buf, "b.txt", 5) == 0);
  struct stat st;
  check("stat through link", stat("/data/sub/link", &st) == 0 && st.st_size == 8);
  check("lstat sees link", lstat("/data/sub/link", &st) == 0 && S_ISLNK(st.st_mode));
  check("hard link", link("/data/sub/b.txt", "/data/sub/hard") == 0);
  check("nlink 2", stat("/data/sub/b.txt", &st) == 0 && st.st_nlink == 2);
  struct timespec times[2] = {{1000000000, 0}, {1234567890, 500}};
  check("utimensat", utimensat(AT_FDCWD, "/data/sub/b.txt", times, 0) == 0);
  check("mtime set", stat("/data/sub/b.txt", &st) == 0 && st.st_mtim.tv_sec == 1234567890 &&
                         st.st_mtim.tv_nsec == 500 && st.st_atim.tv_sec == 1000000000);
}

static void directories(void) {
  char names[512];
  check("mkdir list", mkdir("/data/list", 0755) == 0);
  const char* files[] = {"c", "a", "b"};
  for (int i = 0; i < 3; ++i) {
    char path[64];
    snprintf(path, sizeof path, "/data/list/%s", files[i]);
    FILE* f = fopen(path, "w");
    fprintf(f, "%s\n", files[i]);
    fclose(f);
  }
  list("/data/list", names, sizeof names);
  printf("list: %s\n", names);
  check("unlink b", unlink("/data/list/b") == 0);
  list("/data/list", names, sizeof names);
  printf("list: %s\n", names);
  check("rmdir non-empty is ENOTEMPTY", rmdir("/data/list") != 0 && errno == ENOTEMPTY);
  check("mkdir existing is EEXIST", mkdir("/data/list", 0755) != 0 && errno == EEXIST);
  check("unlink dir is refused", unlink("/data/list") != 0);
}

// Enough long names that readdir needs several fd_readdir calls and resumes
// from cookies.
static void large_directory(void) {
  const int count = 300;
  check("mkdir many", mkdir("/data/many", 0755) == 0);
  for (int i = 0; i < count; ++i) {
    char path[128];
    snprintf(path, sizeof path, "/data/many/entry_%03d_with_a_rather_long_name_to_fill_buffers", i);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || close(fd) != 0) ++failures;
  }
  DIR* d = opendir("/data/many");
  int seen = 0, dots = 0;
  struct dirent* e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.')
      ++dots;
    else if (strncmp(e->d_name, "entry_", 6) == 0 && e->d_type == DT_REG)
      ++seen;
  }
  closedir(d);
  printf("many: %d entries, %d dot entries\n", seen, dots);
  for (int i = 0; i < count; ++i) {
    char path[128];
    snprintf(path, sizeof path, "/data/many/entry_%03d_with_a_rather_long_name_to_fill_buffers", i);
    if (unlink(path) != 0) ++failures;
  }
  check("rmdir many", rmdir("/data/many") == 0);
}

int main(void) {
  check("mkdir sub", mkdir("/data/sub", 0755) == 0);
  seeks_and_positional_io();
  append_and_rename();
  links_and_times();
  directories();
  large_directory();
  FILE* out = fopen("/data/out.txt", "w");
  fprintf(out, "done with %d failures\n", failures);
  fclose(out);
  printf("failures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}
