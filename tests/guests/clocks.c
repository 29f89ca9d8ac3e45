// Clocks, sleeping and poll_oneoff with several subscriptions at once.
// argv[1] is a file under the preopen /data whose size the test knows.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static int failures = 0;

static void check(const char* what, int ok) {
  printf("%s: %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

static uint64_t now(__wasi_clockid_t clock) {
  __wasi_timestamp_t t = 0;
  if (__wasi_clock_time_get(clock, 1, &t) != 0) return 0;
  return t;
}

static __wasi_subscription_t clock_sub(uint64_t userdata, __wasi_clockid_t clock, uint64_t timeout,
                                       int absolute) {
  __wasi_subscription_t s;
  memset(&s, 0, sizeof s);
  s.userdata = userdata;
  s.u.tag = __WASI_EVENTTYPE_CLOCK;
  s.u.u.clock.id = clock;
  s.u.u.clock.timeout = timeout;
  s.u.u.clock.flags = absolute ? __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME : 0;
  return s;
}

static __wasi_subscription_t fd_sub(uint64_t userdata, __wasi_eventtype_t type, int fd) {
  __wasi_subscription_t s;
  memset(&s, 0, sizeof s);
  s.userdata = userdata;
  s.u.tag = type;
  s.u.u.fd_read.file_descriptor = (__wasi_fd_t)fd;
  return s;
}

static void clocks(void) {
  __wasi_timestamp_t res = 0;
  check("monotonic resolution > 0",
        __wasi_clock_res_get(__WASI_CLOCKID_MONOTONIC, &res) == 0 && res > 0);
  check("realtime after 2020", now(__WASI_CLOCKID_REALTIME) > 1577836800ull * 1000000000ull);
  uint64_t a = now(__WASI_CLOCKID_MONOTONIC), b = now(__WASI_CLOCKID_MONOTONIC);
  check("monotonic does not go back", a > 0 && b >= a);
  check("process cputime", now(__WASI_CLOCKID_PROCESS_CPUTIME_ID) > 0);
  check("thread cputime", now(__WASI_CLOCKID_THREAD_CPUTIME_ID) > 0);
  __wasi_timestamp_t t;
  check("unknown clock is EINVAL", __wasi_clock_time_get(99, 1, &t) == __WASI_ERRNO_INVAL);
  struct timespec ts;
  check("clock_gettime", clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec > 1577836800);
}

static void sleeping(void) {
  uint64_t start = now(__WASI_CLOCKID_MONOTONIC);
  struct timespec req = {0, 30 * 1000 * 1000};
  check("nanosleep 30ms", nanosleep(&req, NULL) == 0);
  check("slept at least 30ms", now(__WASI_CLOCKID_MONOTONIC) - start >= 30000000ull);
  start = now(__WASI_CLOCKID_MONOTONIC);
  check("usleep 20ms", usleep(20000) == 0);
  check("slept at least 20ms", now(__WASI_CLOCKID_MONOTONIC) - start >= 20000000ull);
  check("sched_yield", sched_yield() == 0);
}

static void poll_clocks(void) {
  __wasi_subscription_t subs[3];
  __wasi_event_t events[3];
  __wasi_size_t n = 0;
  uint64_t start = now(__WASI_CLOCKID_MONOTONIC);
  subs[0] = clock_sub(1, __WASI_CLOCKID_MONOTONIC, 10000000, 0);       // 10 ms
  subs[1] = clock_sub(2, __WASI_CLOCKID_MONOTONIC, 60000000000ull, 0); // a minute
  subs[2] = clock_sub(3, __WASI_CLOCKID_REALTIME, 120000000000ull, 0); // two
  check("poll three clocks", __wasi_poll_oneoff(subs, events, 3, &n) == 0);
  check("only the 10ms clock fired", n == 1 && events[0].userdata == 1 && events[0].error == 0 &&
                                         events[0].type == __WASI_EVENTTYPE_CLOCK);
  check("after at least 10ms", now(__WASI_CLOCKID_MONOTONIC) - start >= 10000000ull);

  uint64_t deadline = now(__WASI_CLOCKID_MONOTONIC) + 5000000;
  subs[0] = clock_sub(7, __WASI_CLOCKID_MONOTONIC, deadline, 1);
  check("poll absolute deadline",
        __wasi_poll_oneoff(subs, events, 1, &n) == 0 && n == 1 && events[0].userdata == 7);
  check("deadline reached", now(__WASI_CLOCKID_MONOTONIC) >= deadline);
  check("no subscriptions is EINVAL",
        __wasi_poll_oneoff(subs, events, 0, &n) == __WASI_ERRNO_INVAL);
}

static void poll_fds(const char* path) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  check("open known file", fd >= 0 && fstat(fd, &st) == 0);
  __wasi_subscription_t subs[4];
  __wasi_event_t events[4];
  __wasi_size_t n = 0;
  subs[0] = fd_sub(10, __WASI_EVENTTYPE_FD_READ, fd);
  subs[1] = fd_sub(11, __WASI_EVENTTYPE_FD_WRITE, 1);
  subs[2] = clock_sub(12, __WASI_CLOCKID_MONOTONIC, 60000000000ull, 0);
  subs[3] = fd_sub(13, __WASI_EVENTTYPE_FD_READ, 99); // not open
  check("poll file, stdout, clock, bad fd", __wasi_poll_oneoff(subs, events, 4, &n) == 0);
  int file_ready = 0, stdout_ready = 0, bad_fd = 0, clock = 0;
  for (__wasi_size_t i = 0; i < n; ++i) {
    if (events[i].userdata == 10)
      file_ready = events[i].error == 0 && events[i].fd_readwrite.nbytes == (uint64_t)st.st_size;
    if (events[i].userdata == 11) stdout_ready = events[i].error == 0;
    if (events[i].userdata == 13) bad_fd = events[i].error == __WASI_ERRNO_BADF;
    if (events[i].userdata == 12) clock = 1;
  }
  check("file readable with its size in nbytes", file_ready);
  check("stdout writable", stdout_ready);
  check("closed fd reports EBADF", bad_fd);
  check("the minute-long clock did not fire", !clock);
  printf("file size: %lld\n", (long long)st.st_size);
  close(fd);
}

int main(int argc, char** argv) {
  clocks();
  sleeping();
  poll_clocks();
  if (argc > 1) poll_fds(argv[1]);
  printf("failures: %d\n", failures);
  return failures == 0 ? 0 : 1;
}
