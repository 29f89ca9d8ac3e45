// All of a WASI program's host state, reachable from one object: the
// options it was started with, the fd table, the clocks' offsets, and a
// suspended poll_oneoff's deadlines. No globals, so a checkpoint can write a
// context down and a restore can build one.
#pragma once

#include "wasi/clocks.h"
#include "wasi/fd_table.h"
#include "wasi/net_policy.h"
#include "wasi/sandbox.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <sys/uio.h>
#include <vector>

namespace tern::wasi {

struct Preopen {
  std::string host_path;  // as given on the command line
  std::string guest_path; // the name the guest sees (fd_prestat_dir_name)
};

// `tern run` fills this; the checkpoint issue serializes it with the fd table.
struct WasiOptions {
  std::vector<std::string> args;   // argv, argv[0] included
  std::vector<std::string> env;    // "KEY=VALUE"
  std::vector<Preopen> preopens;   // fds 3, 4, ... in this order
  std::vector<std::string> listen; // "ADDR:PORT": listening sockets after the preopens
  // The socket extension's sandbox (NetPolicy): "ADDR[/PREFIX][:PORT]"
  // patterns and host names.
  std::vector<std::string> allow_connect, allow_bind, allow_resolve;
  // Host files for the standard streams; empty inherits tern's own.
  std::string stdin_path, stdout_path, stderr_path;
  ResolveMode resolve_mode = ResolveMode::Auto;
};

// "HOST[::GUEST]" as --dir takes it; GUEST defaults to HOST.
Preopen parse_dir_option(std::string_view spec);

// Standard stream `which` (0-2) as the guest gets it: tern's own
// (duplicated, so the guest closing it does not close tern's), or the file
// `redirect` (stdin read, stdout/stderr created or truncated). No host fd
// when tern's own stream is closed. Throws tern::Error naming the option.
FdEntry stdio_entry(int which, const std::string& redirect);
// The same for a stream already open as `host` (a restore reopening the
// checkpoint's redirection), called `name`.
FdEntry stdio_entry(int which, util::UniqueFd host, std::string name);
// The fd entry of preopen number `index`, whose directory is open as `dir`.
FdEntry preopen_entry(util::UniqueFd dir, uint32_t index);

// A poll_oneoff that returned "suspend": when the same call is issued again
// (after a restore) its clocks keep their original deadlines instead of
// starting over.
struct PendingPoll {
  uint32_t in = 0;                    // guest address of the subscriptions
  std::vector<uint8_t> subscriptions; // their bytes, to recognise the call
  std::vector<uint64_t> deadlines;    // per subscription, in the clock's own time
};

class WasiContext {
public:
  // Opens the preopened directories, the standard streams and the listening
  // sockets. Throws tern::Error naming the option that cannot be honoured.
  explicit WasiContext(WasiOptions options);
  // A context whose fd table starts empty: restore_state (wasi/state.h)
  // fills it from a snapshot instead of opening what the options name.
  struct EmptyFdTable {};
  WasiContext(WasiOptions options, EmptyFdTable);
  WasiContext(const WasiContext&) = delete;
  WasiContext& operator=(const WasiContext&) = delete;
  // Host functions keep a reference to their context: a program built
  // before its state arrives (a migration target) gets the restored
  // context moved into the one they know.
  WasiContext& operator=(WasiContext&&) = default;

  const WasiOptions& options() const { return options_; }
  const std::vector<Preopen>& preopens() const { return options_.preopens; }
  FdTable& fds() { return fds_; }
  Clocks& clocks() { return clocks_; }
  PathResolver& resolver() { return resolver_; }
  const NetPolicy& net_policy() const { return net_policy_; }
  std::optional<PendingPoll>& pending_poll() { return pending_poll_; }
  // The gateway the program is published through (`--gateway`), if any.
  GatewayLink* gateway_link() const { return gateway_link_.get(); }
  void set_gateway_link(std::shared_ptr<GatewayLink> link) { gateway_link_ = std::move(link); }
  // Reused by every read/write so that no call allocates: one per host
  // thread, since a call that waits with the context unlocked
  // (wasi/calls.h, wait_ready) still holds its iovecs while another
  // thread's call gathers its own.
  static std::vector<iovec>& iov_scratch();
  // The threads of a program (wasi-threads) share its context: each call
  // holds this lock, so calls happen one at a time (wasi/wasi.cpp). A call
  // that waits (an fd not ready: fd_read, fd_write, sock_recv, sock_send,
  // sock_accept, sock_connect, poll_oneoff, or a poll_oneoff that only
  // sleeps) lets it go while it waits, keeping the fd entries it waits on
  // (FdTable::share), so other threads' calls go on meanwhile.
  std::mutex& calls_mutex() { return *calls_mutex_; }

private:
  void open_stdio();
  void open_preopens();
  void open_listeners();

  WasiOptions options_;
  FdTable fds_;
  Clocks clocks_;
  PathResolver resolver_;
  NetPolicy net_policy_;
  std::optional<PendingPoll> pending_poll_;
  std::shared_ptr<GatewayLink> gateway_link_;
  // Behind a pointer: the context is move-assigned (a migration target),
  // never while a call runs.
  std::unique_ptr<std::mutex> calls_mutex_ = std::make_unique<std::mutex>();
};

} // namespace tern::wasi
