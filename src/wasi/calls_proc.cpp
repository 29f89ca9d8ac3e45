// args, environment, clocks, randomness and process calls.
#include "wasi/calls.h"
#include "wasi/posix_errno.h"

#include <array>
#include <cerrno>
#include <fmt/format.h>
#include <sched.h>
#include <sys/random.h>

namespace tern::wasi::calls {
namespace {

// args_sizes_get / environ_sizes_get: the count and the bytes of the
// NUL-terminated strings.
Ret list_sizes(Call& c, const std::vector<std::string>& list, uint32_t count_out,
               uint32_t size_out) {
  uint64_t bytes = 0;
  for (const auto& s : list) bytes += s.size() + 1;
  if (bytes > UINT32_MAX) return Errno::overflow;
  WASI_TRY(c.mem.store<uint32_t>(count_out, uint32_t(list.size())));
  return c.mem.store<uint32_t>(size_out, uint32_t(bytes));
}

// args_get / environ_get: a pointer per string into one buffer of
// NUL-terminated strings.
Ret list_get(Call& c, const std::vector<std::string>& list, uint32_t ptrs, uint32_t buf) {
  uint64_t bytes = 0;
  for (const auto& s : list) bytes += s.size() + 1;
  if (!c.mem.in_bounds(ptrs, uint64_t(list.size()) * 4) || !c.mem.in_bounds(buf, bytes))
    return Errno::fault;
  uint32_t at = buf;
  for (size_t i = 0; i < list.size(); ++i) {
    c.mem.store<uint32_t>(ptrs + 4 * i, at);
    const auto& s = list[i];
    c.mem.write(at, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    c.mem.store<uint8_t>(at + s.size(), 0);
    at += uint32_t(s.size() + 1);
  }
  return Errno::success;
}

// WASI signal numbers (preview1 `signal` enum) and whether their default
// action ends the process.
struct SignalInfo {
  const char* name;
  bool fatal;
};
constexpr std::array<SignalInfo, 31> kSignals = {{
    {"none", false},    {"SIGHUP", true},    {"SIGINT", true},   {"SIGQUIT", true},
    {"SIGILL", true},   {"SIGTRAP", true},   {"SIGABRT", true},  {"SIGBUS", true},
    {"SIGFPE", true},   {"SIGKILL", true},   {"SIGUSR1", true},  {"SIGSEGV", true},
    {"SIGUSR2", true},  {"SIGPIPE", true},   {"SIGALRM", true},  {"SIGTERM", true},
    {"SIGCHLD", false}, {"SIGCONT", false},  {"SIGSTOP", false}, {"SIGTSTP", false},
    {"SIGTTIN", false}, {"SIGTTOU", false},  {"SIGURG", false},  {"SIGXCPU", true},
    {"SIGXFSZ", true},  {"SIGVTALRM", true}, {"SIGPROF", true},  {"SIGWINCH", false},
    {"SIGPOLL", true},  {"SIGPWR", true},    {"SIGSYS", true},
}};

} // namespace

Ret args_get(Call& c, uint32_t argv, uint32_t argv_buf) {
  return list_get(c, c.ctx.options().args, argv, argv_buf);
}

Ret args_sizes_get(Call& c, uint32_t argc_out, uint32_t buf_size_out) {
  return list_sizes(c, c.ctx.options().args, argc_out, buf_size_out);
}

Ret environ_get(Call& c, uint32_t environ, uint32_t environ_buf) {
  return list_get(c, c.ctx.options().env, environ, environ_buf);
}

Ret environ_sizes_get(Call& c, uint32_t count_out, uint32_t buf_size_out) {
  return list_sizes(c, c.ctx.options().env, count_out, buf_size_out);
}

Ret clock_res_get(Call& c, uint32_t clock_id, uint32_t resolution_out) {
  uint64_t res = 0;
  WASI_TRY(c.ctx.clocks().resolution(clock_id, res));
  return c.mem.store<uint64_t>(resolution_out, res);
}

Ret clock_time_get(Call& c, uint32_t clock_id, uint64_t /*precision*/, uint32_t time_out) {
  uint64_t now = 0;
  WASI_TRY(c.ctx.clocks().now(clock_id, now));
  return c.mem.store<uint64_t>(time_out, now);
}

Ret random_get(Call& c, uint32_t buf, uint32_t buf_len) {
  std::span<uint8_t> out;
  WASI_TRY(c.mem.bytes(buf, buf_len, out));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_errno();
    }
    done += size_t(n);
  }
  return Errno::success;
}

runtime::HostResult proc_exit(Call& /*c*/, uint32_t code) {
  return runtime::HostResult::exit(static_cast<int32_t>(code));
}

// A raised signal behaves as its default action would on a POSIX process:
// fatal ones end the program (as a trap naming the signal), the others are
// ignored.
Ret proc_raise(Call& /*c*/, uint32_t signal) {
  if (signal >= kSignals.size()) return Errno::inval;
  const SignalInfo& info = kSignals[signal];
  if (!info.fatal) return Errno::success;
  return runtime::HostResult::trap(fmt::format("the program raised {}", info.name));
}

Ret sched_yield(Call& /*c*/) {
  ::sched_yield();
  return Errno::success;
}

} // namespace tern::wasi::calls
