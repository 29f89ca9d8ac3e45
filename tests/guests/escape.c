// Tries to leave the preopened directory /sandbox in every way we know,
// with raw WASI calls (wasi-libc would refuse some paths before tern sees
// them). Prints "<attempt>: <errno>" per attempt; the test expects each
// escape refused. argv[1] is the host's absolute path of the directory
// outside the sandbox. "race N" instead opens swap/secret N times while the
// test swaps `swap` between a directory and symlinks out, and reports
// whether an outside file was ever read.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static __wasi_fd_t sandbox = 0;

static const char* errno_name(__wasi_errno_t e) {
  switch (e) {
  case __WASI_ERRNO_SUCCESS:
    return "success";
  case __WASI_ERRNO_NOTCAPABLE:
    return "ENOTCAPABLE";
  case __WASI_ERRNO_PERM:
    return "EPERM";
  case __WASI_ERRNO_LOOP:
    return "ELOOP";
  case __WASI_ERRNO_NOENT:
    return "ENOENT";
  case __WASI_ERRNO_NOTDIR:
    return "ENOTDIR";
  case __WASI_ERRNO_EXIST:
    return "EEXIST";
  case __WASI_ERRNO_INVAL:
    return "EINVAL";
  case __WASI_ERRNO_XDEV:
    return "EXDEV";
  case __WASI_ERRNO_ACCES:
    return "EACCES";
  default:
    return "other";
  }
}

static void report(const char* what, __wasi_errno_t e) {
  printf("%s: %s\n", what, errno_name(e));
}

static __wasi_fd_t find_preopen(const char* name) {
  for (__wasi_fd_t fd = 3; fd < 64; ++fd) {
    __wasi_prestat_t p;
    if (__wasi_fd_prestat_get(fd, &p) != 0) break;
    char buf[256] = {0};
    if (p.u.dir.pr_name_len < sizeof buf &&
        __wasi_fd_prestat_dir_name(fd, (uint8_t*)buf, p.u.dir.pr_name_len) == 0 &&
        strcmp(buf, name) == 0)
      return fd;
  }
  return 0;
}

static __wasi_errno_t open_at(const char* path, __wasi_lookupflags_t follow, __wasi_oflags_t oflags,
                              __wasi_fd_t* out) {
  __wasi_rights_t rights = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE |
                           __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_OPEN;
  if (oflags & __WASI_OFLAGS_DIRECTORY) rights = __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_OPEN;
  return __wasi_path_open(sandbox, follow, path, oflags, rights, rights, 0, out);
}

// Opens `path` for reading and returns its first bytes in `buf`.
static __wasi_errno_t read_file(const char* path, char* buf, size_t size) {
  __wasi_fd_t fd;
  __wasi_errno_t e = open_at(path, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, 0, &fd);
  if (e != 0) return e;
  __wasi_iovec_t iov = {(uint8_t*)buf, size - 1};
  __wasi_size_t n = 0;
  e = __wasi_fd_read(fd, &iov, 1, &n);
  buf[n] = 0;
  (void)__wasi_fd_close(fd);
  return e;
}

static void try_open(const char* what, const char* path, __wasi_lookupflags_t follow,
                     __wasi_oflags_t oflags) {
  __wasi_fd_t fd;
  __wasi_errno_t e = open_at(path, follow, oflags, &fd);
  if (e == 0) {
    char buf[64] = {0};
    __wasi_iovec_t iov = {(uint8_t*)buf, sizeof buf - 1};
    __wasi_size_t n = 0;
    if (__wasi_fd_read(fd, &iov, 1, &n) == 0 && n > 0) printf("  read: %s\n", buf);
    (void)__wasi_fd_close(fd);
  }
  report(what, e);
}

static const __wasi_lookupflags_t FOLLOW = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;

static void opens(const char* outside) {
  char abs[512];
  snprintf(abs, sizeof abs, "%s/secret", outside);
  try_open("open ../outside/secret", "../outside/secret", FOLLOW, 0);
  try_open("open absolute outside path", abs, FOLLOW, 0);
  try_open("open /etc/passwd", "/etc/passwd", FOLLOW, 0);
  try_open("open sub/../../outside/secret", "sub/../../outside/secret", FOLLOW, 0);
  try_open("open .. ", "..", FOLLOW, __WASI_OFLAGS_DIRECTORY);
  try_open("open through absolute dir symlink", "link_abs/secret", FOLLOW, 0);
  try_open("open through relative dir symlink", "link_rel/secret", FOLLOW, 0);
  try_open("open absolute file symlink", "link_file", FOLLOW, 0);
  try_open("open relative file symlink", "link_file_rel", FOLLOW, 0);
  try_open("open symlink chain out", "link_chain", FOLLOW, 0);
  try_open("open dir symlink out as directory", "link_rel", FOLLOW, __WASI_OFLAGS_DIRECTORY);
  try_open("open symlink loop", "loop1", FOLLOW, 0);
  try_open("create ../outside/created", "../outside/created", FOLLOW, __WASI_OFLAGS_CREAT);
  try_open("create through dir symlink", "link_rel/created", FOLLOW, __WASI_OFLAGS_CREAT);
  try_open("create through dangling symlink out", "link_dangling", FOLLOW, __WASI_OFLAGS_CREAT);
}

static void path_calls(void) {
  __wasi_filestat_t st;
  report("mkdir ../outside/newdir", __wasi_path_create_directory(sandbox, "../outside/newdir"));
  report("mkdir through dir symlink", __wasi_path_create_directory(sandbox, "link_rel/newdir"));
  report("rename into outside",
         __wasi_path_rename(sandbox, "inside.txt", sandbox, "../outside/moved"));
  report("rename through dir symlink",
         __wasi_path_rename(sandbox, "inside.txt", sandbox, "link_abs/moved"));
  report("rename outside file in",
         __wasi_path_rename(sandbox, "../outside/secret", sandbox, "got"));
  report("link into outside",
         __wasi_path_link(sandbox, 0, "inside.txt", sandbox, "../outside/hard"));
  report("link outside file in",
         __wasi_path_link(sandbox, 0, "../outside/secret", sandbox, "stolen"));
  report("link through file symlink",
         __wasi_path_link(sandbox, FOLLOW, "link_file", sandbox, "stolen2"));
  report("symlink to absolute path", __wasi_path_symlink("/etc/passwd", sandbox, "evil_abs"));
  report("symlink to ../outside", __wasi_path_symlink("../outside/secret", sandbox, "evil_rel"));
  report("symlink climbing out from sub",
         __wasi_path_symlink("../../outside", sandbox, "sub/evil_sub"));
  report("unlink ../outside/secret", __wasi_path_unlink_file(sandbox, "../outside/secret"));
  report("unlink through dir symlink", __wasi_path_unlink_file(sandbox, "link_rel/secret"));
  report("rmdir ../outside/dir", __wasi_path_remove_directory(sandbox, "../outside/dir"));
  report("stat ../outside/secret",
         __wasi_path_filestat_get(sandbox, FOLLOW, "../outside/secret", &st));
  report("stat through dir symlink",
         __wasi_path_filestat_get(sandbox, FOLLOW, "link_abs/secret", &st));
  report("stat following file symlink",
         __wasi_path_filestat_get(sandbox, FOLLOW, "link_file", &st));
  report("utimes following file symlink",
         __wasi_path_filestat_set_times(sandbox, FOLLOW, "link_file", 0, 0,
                                        __WASI_FSTFLAGS_ATIM_NOW | __WASI_FSTFLAGS_MTIM_NOW));
  report("utimes ../outside/secret",
         __wasi_path_filestat_set_times(sandbox, 0, "../outside/secret", 0, 0,
                                        __WASI_FSTFLAGS_MTIM_NOW));
  char buf[64];
  __wasi_size_t n;
  report("readlink ../outside/alink",
         __wasi_path_readlink(sandbox, "../outside/alink", (uint8_t*)buf, sizeof buf, &n));
}

// What stays allowed: `..` and symlinks that stay inside.
static void allowed(void) {
  char buf[64];
  __wasi_errno_t e = read_file("inside.txt", buf, sizeof buf);
  printf("open inside.txt: %s %s\n", errno_name(e), e == 0 ? buf : "");
  e = read_file("sub/../inside.txt", buf, sizeof buf);
  printf("open sub/../inside.txt: %s %s\n", errno_name(e), e == 0 ? buf : "");
  e = read_file("link_in", buf, sizeof buf);
  printf("open link_in: %s %s\n", errno_name(e), e == 0 ? buf : "");
  __wasi_filestat_t st;
  report("lstat link_file (the link itself)",
         __wasi_path_filestat_get(sandbox, 0, "link_file", &st));
  __wasi_size_t n;
  report("readlink link_abs",
         __wasi_path_readlink(sandbox, "link_abs", (uint8_t*)buf, sizeof buf, &n));
  report("symlink staying inside", __wasi_path_symlink("../inside.txt", sandbox, "sub/ok_link"));
}

static int race(int attempts) {
  int opened = 0, escaped = 0;
  for (int i = 0; i < attempts; ++i) {
    char buf[64];
    if (read_file("swap/secret", buf, sizeof buf) != 0) continue;
    ++opened;
    if (strncmp(buf, "inside", 6) != 0) {
      ++escaped;
      printf("ESCAPED: read %s\n", buf);
    }
  }
  printf("race: %d attempts, %s opened inside, %d escaped\n", attempts,
         opened > 0 ? "some" : "none", escaped);
  return escaped == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  sandbox = find_preopen("/sandbox");
  if (!sandbox) {
    fprintf(stderr, "no preopen named /sandbox\n");
    return 2;
  }
  if (argc > 2 && strcmp(argv[1], "race") == 0) return race(atoi(argv[2]));
  opens(argc > 1 ? argv[1] : "/nonexistent");
  path_calls();
  allowed();
  return 0;
}
