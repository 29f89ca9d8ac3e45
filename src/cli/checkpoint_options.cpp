#include "cli/checkpoint_options.h"

#include "migrate/source.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <csignal>
#include <cstring>
#include <fmt/format.h>

namespace tern::cli {
namespace {

// "USR1", "SIGUSR1", "usr1" or a number; not one of the fault signals:
// tern needs SIGSEGV and SIGBUS for compiled code's traps, and a handler that
// returns from a fault re-executes the faulting instruction forever.
int parse_signal(const std::string& text) {
  int number = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), number).ptr ==
          text.data() + text.size() &&
      number > 0 && number < NSIG) {
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP})
      if (number == fault)
        throw Error(fmt::format("--checkpoint-on-signal {}: {} is a fault signal, which tern "
                                "cannot use to checkpoint",
                                text, strsignal(number)));
    return number;
  }
  std::string name;
  for (char c : text)
    name.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  static const std::pair<const char*, int> kNames[] = {
      {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},   {"INT", SIGINT},
      {"QUIT", SIGQUIT}, {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"WINCH", SIGWINCH},
  };
  for (const auto& [n, sig] : kNames)
    if (name == n) return sig;
  throw Error(fmt::format("--checkpoint-on-signal {}: not a signal name or number", text));
}

} // namespace

// "500ms", "10s", "2m", "1h"; a bare number is seconds.
std::chrono::milliseconds parse_duration(const std::string& text, std::string_view option) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string unit(end, text.data() + text.size());
  double ms;
  if (ec != std::errc() || value <= 0)
    ms = -1;
  else if (unit == "ms")
    ms = value;
  else if (unit == "s" || unit.empty())
    ms = value * 1000;
  else if (unit == "m")
    ms = value * 60'000;
  else if (unit == "h")
    ms = value * 3'600'000;
  else
    ms = -1;
  // Written so that NaN fails too; the upper bound (about 31,700 years)
  // keeps the conversion to milliseconds defined: "inf" became a negative
  // period, a checkpoint after every other.
  if (!(ms >= 1 && ms <= 1e15))
    throw Error(fmt::format("{} {}: expected a duration such as 500ms, 10s, 5m", option, text));
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

namespace {

// --checkpoint-at's N: a decimal count from 1 (CLI11 alone would take "-5"
// as 2^64-5, "010" as octal 8 and clamp one that overflows).
std::string check_count(const std::string& text) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc::result_out_of_range) return fmt::format("{} is too large", text);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n == 0)
    return fmt::format("{}: expected a count of stable points, 1 or more", text);
  if (text.size() > 1 && text[0] == '0') return fmt::format("{}: write N in decimal", text);
  return {};
}

} // namespace

void add_checkpoint_options(CLI::App& cmd, CheckpointCliOptions& o) {
  const char* group = "Checkpoints";
  cmd.add_option("--checkpoint-to", o.to,
                 "Where checkpoints are written (SIGUSR1 then checkpoints and continues)")
      ->type_name("PATH")
      ->group(group);
  cmd.add_option("--checkpoint-on-signal", o.on_signal,
                 "The signal that checkpoints and continues (default USR1)")
      ->type_name("SIG")
      ->group(group);
  cmd.add_flag("--checkpoint-on-exit", o.on_exit, "SIGTERM checkpoints, then tern exits")
      ->group(group);
  cmd.add_option("--checkpoint-every", o.every, "Checkpoint periodically (e.g. 30s, 500ms)")
      ->type_name("DURATION")
      ->group(group);
  cmd.add_option("--control", o.control,
                 "A local socket accepting `checkpoint [--stop] [PATH]`, `status` and `migrate` "
                 "(clients: tern checkpoint, tern migrate)")
      ->type_name("SOCKET")
      ->group(group);
  cmd.add_option("--checkpoint-at", o.at,
                 "Checkpoint at the N-th stable point executed (loop headers and function "
                 "entries; deterministic)")
      ->type_name("N")
      ->check(CLI::Validator(check_count, ""))
      ->group(group);
  cmd.add_option("--pause-at", o.pause_at,
                 "Wait at the N-th stable point until a control request (checkpoint, migrate) "
                 "has been handled, then continue (needs --control; for tests)")
      ->type_name("N")
      ->check(CLI::Validator(check_count, ""))
      ->group(group);
  cmd.add_option("--checkpoint-every-points", o.every_points,
                 "Checkpoint at every N-th stable point executed: N, 2N, 3N, ... (deterministic)")
      ->type_name("N")
      ->check(CLI::Validator(check_count, ""))
      ->group(group);
  cmd.add_flag("--incremental", o.incremental,
               "Checkpoints to PATH form a chain: PATH.1 self-contained, then PATH.2, ... each "
               "with only the memory pages written since the one before; PATH names the newest")
      ->group(group);
  cmd.add_flag("--stop-after-checkpoint", o.stop_after,
               "Exit (status 0) once a checkpoint has been written")
      ->group(group);
  cmd.add_flag("--bundle-files", o.bundle_files,
               "Carry the contents of files open for writing inside the snapshot")
      ->group(group);
  cmd.add_flag("--no-embed-module", o.no_embed_module,
               "Leave the module out of the snapshot (restore then needs --module)")
      ->group(group);
  cmd.add_flag("--verbose-checkpoints", o.verbose, "Report each checkpoint and the pause on stderr")
      ->group(group);
}

program::CheckpointPolicy checkpoint_policy(const CheckpointCliOptions& o) {
  program::CheckpointPolicy p;
  p.path = o.to;
  const bool needs_path = o.on_exit || !o.every.empty() || o.at > 0 || o.every_points > 0 ||
                          o.stop_after || o.incremental;
  if (needs_path && p.path.empty())
    throw Error("--checkpoint-on-exit, --checkpoint-every, --checkpoint-at, "
                "--checkpoint-every-points, --stop-after-checkpoint and --incremental need "
                "--checkpoint-to PATH");
  const int signal = parse_signal(o.on_signal); // checked even when unused
  if (!p.path.empty()) p.continue_signals.push_back(signal);
  p.checkpoint_on_sigterm = o.on_exit;
  if (!o.every.empty()) p.every = parse_duration(o.every, "--checkpoint-every");
  p.control_socket = o.control;
  if (o.at > 0) p.at = o.at;
  if (o.pause_at > 0) {
    if (o.control.empty()) throw Error("--pause-at needs --control SOCKET");
    if (o.at > 0) throw Error("--pause-at and --checkpoint-at cannot be combined");
    p.pause_at = o.pause_at;
  }
  p.commands.push_back(migrate::migrate_command());
  if (o.every_points > 0) p.every_points = o.every_points;
  p.incremental = o.incremental;
  p.stop_after_checkpoint = o.stop_after;
  p.save.bundle_files = o.bundle_files;
  p.capture.embed_module = !o.no_embed_module;
  p.verbose = o.verbose;
  return p;
}

void print_trap(const runtime::Trap& trap, const wasm::Module& module) {
  fmt::print(stderr, "tern: trap: {}\n", trap.message);
  if (trap.backtrace.empty()) return;
  fmt::print(stderr, "wasm backtrace:\n");
  for (size_t i = 0; i < trap.backtrace.size(); ++i) {
    const auto& f = trap.backtrace[i];
    std::string name = f.func_name.empty() ? module.func_name(f.func_index) : f.func_name;
    fmt::print(stderr, "  {:>3}: {:#08x} - {}\n", i, f.wasm_offset, name);
  }
}

int exit_status(const program::SupervisedOutcome& outcome, const wasm::Module& module) {
  if (outcome.stopped) return 0;
  switch (outcome.exec.kind) {
  case runtime::ExecOutcome::Kind::Returned:
    return 0;
  case runtime::ExecOutcome::Kind::Exited:
    return outcome.exec.exit_code;
  case runtime::ExecOutcome::Kind::Trapped:
    print_trap(outcome.exec.trap, module);
    return kTrapExitCode;
  case runtime::ExecOutcome::Kind::Suspended:
    break;
  }
  throw InternalError("the program is still stopped");
}

} // namespace tern::cli
