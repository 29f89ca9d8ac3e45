// The wasi_snapshot_preview1 functions, one C++ function each, with the
// wasm signature spelled by their parameter types (uint32_t = i32,
// uint64_t = i64). wasi.cpp registers them; unit tests call them directly.
#pragma once

#include "runtime/function.h"
#include "runtime/interrupt.h"
#include "wasi/abi.h"
#include "wasi/blocking.h"
#include "wasi/context.h"
#include "wasi/guest_memory.h"

#include <cstdint>
#include <optional>

namespace tern::wasi {

// One WASI call in progress.
struct Call {
  WasiContext& ctx;
  GuestMemory mem;
  const runtime::Interrupt& interrupt; // blocking waits watch it
  // The context's calls_mutex(), held for the call; null in unit tests.
  std::unique_lock<std::mutex>* context_lock = nullptr;
  // Entries a wait of this call uses with the context unlocked
  // (wait_ready below, poll_oneoff): alive until the call returns.
  std::vector<std::shared_ptr<FdEntry>> kept = {};
};

// wait_ready (blocking.h) for a call on `e`: when the wait may block, the
// context's lock is let go meanwhile, so other threads' calls go on (a
// thread blocked reading a pipe does not stop another's fd_write), and `e`
// is kept by the call. Callers touch the context again only after it
// returns (locked again).
Wait wait_ready(Call& c, FdEntry& e, short events, uint64_t timeout_us);

// What a call returns: an errno for the guest, or a HostResult that stops
// it (suspend for a checkpoint, trap).
struct Ret {
  Errno err = Errno::success;
  std::optional<runtime::HostResult> stop;

  Ret(Errno e) : err(e) {}
  Ret(runtime::HostResult r) : stop(std::move(r)) {}
  bool ok() const { return !stop && err == Errno::success; }
  static Ret suspend() { return runtime::HostResult::suspend(); }
};
inline bool failed(const Ret& r) {
  return !r.ok();
}

// open(2) flags for path_open with these oflags, rights and fdflags
// (O_NONBLOCK excepted: non-blocking is the guest's view only). A restore
// reopens files with the same.
int host_open_flags(uint32_t oflags, Rights base, uint32_t fdflags, bool follow);

namespace calls {

// args, environment, clocks, randomness, process
Ret args_get(Call& c, uint32_t argv, uint32_t argv_buf);
Ret args_sizes_get(Call& c, uint32_t argc_out, uint32_t buf_size_out);
Ret environ_get(Call& c, uint32_t environ, uint32_t environ_buf);
Ret environ_sizes_get(Call& c, uint32_t count_out, uint32_t buf_size_out);
Ret clock_res_get(Call& c, uint32_t clock_id, uint32_t resolution_out);
Ret clock_time_get(Call& c, uint32_t clock_id, uint64_t precision, uint32_t time_out);
Ret random_get(Call& c, uint32_t buf, uint32_t buf_len);
runtime::HostResult proc_exit(Call& c, uint32_t code);
Ret proc_raise(Call& c, uint32_t signal);
Ret sched_yield(Call& c);

// fd_*
Ret fd_advise(Call& c, uint32_t fd, uint64_t offset, uint64_t len, uint32_t advice);
Ret fd_allocate(Call& c, uint32_t fd, uint64_t offset, uint64_t len);
Ret fd_close(Call& c, uint32_t fd);
Ret fd_datasync(Call& c, uint32_t fd);
Ret fd_fdstat_get(Call& c, uint32_t fd, uint32_t stat_out);
Ret fd_fdstat_set_flags(Call& c, uint32_t fd, uint32_t flags);
Ret fd_fdstat_set_rights(Call& c, uint32_t fd, uint64_t base, uint64_t inheriting);
Ret fd_filestat_get(Call& c, uint32_t fd, uint32_t stat_out);
Ret fd_filestat_set_size(Call& c, uint32_t fd, uint64_t size);
Ret fd_filestat_set_times(Call& c, uint32_t fd, uint64_t atim, uint64_t mtim, uint32_t fst_flags);
Ret fd_pread(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint64_t offset,
             uint32_t nread_out);
Ret fd_prestat_get(Call& c, uint32_t fd, uint32_t prestat_out);
Ret fd_prestat_dir_name(Call& c, uint32_t fd, uint32_t path, uint32_t path_len);
Ret fd_pwrite(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint64_t offset,
              uint32_t nwritten_out);
Ret fd_read(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nread_out);
Ret fd_readdir(Call& c, uint32_t fd, uint32_t buf, uint32_t buf_len, uint64_t cookie,
               uint32_t bufused_out);
Ret fd_renumber(Call& c, uint32_t fd, uint32_t to);
Ret fd_seek(Call& c, uint32_t fd, uint64_t offset, uint32_t whence, uint32_t newoffset_out);
Ret fd_sync(Call& c, uint32_t fd);
Ret fd_tell(Call& c, uint32_t fd, uint32_t offset_out);
Ret fd_write(Call& c, uint32_t fd, uint32_t iovs, uint32_t iovs_len, uint32_t nwritten_out);

// path_*
Ret path_create_directory(Call& c, uint32_t fd, uint32_t path, uint32_t path_len);
Ret path_filestat_get(Call& c, uint32_t fd, uint32_t flags, uint32_t path, uint32_t path_len,
                      uint32_t stat_out);
Ret path_filestat_set_times(Call& c, uint32_t fd, uint32_t flags, uint32_t path, uint32_t path_len,
                            uint64_t atim, uint64_t mtim, uint32_t fst_flags);
Ret path_link(Call& c, uint32_t old_fd, uint32_t old_flags, uint32_t old_path,
              uint32_t old_path_len, uint32_t new_fd, uint32_t new_path, uint32_t new_path_len);
Ret path_open(Call& c, uint32_t fd, uint32_t dirflags, uint32_t path, uint32_t path_len,
              uint32_t oflags, uint64_t rights_base, uint64_t rights_inheriting, uint32_t fdflags,
              uint32_t fd_out);
Ret path_readlink(Call& c, uint32_t fd, uint32_t path, uint32_t path_len, uint32_t buf,
                  uint32_t buf_len, uint32_t bufused_out);
Ret path_remove_directory(Call& c, uint32_t fd, uint32_t path, uint32_t path_len);
Ret path_rename(Call& c, uint32_t fd, uint32_t old_path, uint32_t old_path_len, uint32_t new_fd,
                uint32_t new_path, uint32_t new_path_len);
Ret path_symlink(Call& c, uint32_t old_path, uint32_t old_path_len, uint32_t fd, uint32_t new_path,
                 uint32_t new_path_len);
Ret path_unlink_file(Call& c, uint32_t fd, uint32_t path, uint32_t path_len);

// poll_oneoff
Ret poll_oneoff(Call& c, uint32_t in, uint32_t out, uint32_t nsubscriptions, uint32_t nevents_out);

// sock_* (the preview1 four; the socket extension follows)
Ret sock_accept(Call& c, uint32_t fd, uint32_t flags, uint32_t fd_out);
Ret sock_recv(Call& c, uint32_t fd, uint32_t ri_data, uint32_t ri_data_len, uint32_t ri_flags,
              uint32_t ro_datalen_out, uint32_t ro_flags_out);
Ret sock_send(Call& c, uint32_t fd, uint32_t si_data, uint32_t si_data_len, uint32_t si_flags,
              uint32_t so_datalen_out);
Ret sock_shutdown(Call& c, uint32_t fd, uint32_t how);

// The socket extension: WAMR's lib-socket ABI (wasi_socket_ext.h), imported
// from wasi_snapshot_preview1 too. Addresses are __wasi_addr_t records
// (layout::wasi_addr); booleans are written as one byte.
Ret sock_open(Call& c, uint32_t pool_fd, uint32_t af, uint32_t socktype, uint32_t fd_out);
Ret sock_close(Call& c, uint32_t fd);
Ret sock_bind(Call& c, uint32_t fd, uint32_t addr);
Ret sock_listen(Call& c, uint32_t fd, uint32_t backlog);
Ret sock_connect(Call& c, uint32_t fd, uint32_t addr);
Ret sock_addr_local(Call& c, uint32_t fd, uint32_t addr_out);
Ret sock_addr_remote(Call& c, uint32_t fd, uint32_t addr_out);
Ret sock_addr_resolve(Call& c, uint32_t host, uint32_t service, uint32_t hints, uint32_t info_out,
                      uint32_t info_count, uint32_t max_count_out);
Ret sock_send_to(Call& c, uint32_t fd, uint32_t si_data, uint32_t si_data_len, uint32_t si_flags,
                 uint32_t dest_addr, uint32_t so_datalen_out);
Ret sock_recv_from(Call& c, uint32_t fd, uint32_t ri_data, uint32_t ri_data_len, uint32_t ri_flags,
                   uint32_t src_addr_out, uint32_t ro_datalen_out);

// Its options: sock_set_X / sock_get_X pairs.
Ret sock_set_reuse_addr(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_reuse_addr(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_reuse_port(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_reuse_port(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_keep_alive(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_keep_alive(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_broadcast(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_broadcast(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_tcp_no_delay(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_tcp_no_delay(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_tcp_quick_ack(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_tcp_quick_ack(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_tcp_fastopen_connect(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_tcp_fastopen_connect(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_ipv6_only(Call& c, uint32_t fd, uint32_t enabled);
Ret sock_get_ipv6_only(Call& c, uint32_t fd, uint32_t enabled_out);
Ret sock_set_linger(Call& c, uint32_t fd, uint32_t enabled, uint32_t linger_s);
Ret sock_get_linger(Call& c, uint32_t fd, uint32_t enabled_out, uint32_t linger_s_out);
Ret sock_set_recv_buf_size(Call& c, uint32_t fd, uint32_t size);
Ret sock_get_recv_buf_size(Call& c, uint32_t fd, uint32_t size_out);
Ret sock_set_send_buf_size(Call& c, uint32_t fd, uint32_t size);
Ret sock_get_send_buf_size(Call& c, uint32_t fd, uint32_t size_out);
Ret sock_set_recv_timeout(Call& c, uint32_t fd, uint64_t timeout_us);
Ret sock_get_recv_timeout(Call& c, uint32_t fd, uint32_t timeout_us_out);
Ret sock_set_send_timeout(Call& c, uint32_t fd, uint64_t timeout_us);
Ret sock_get_send_timeout(Call& c, uint32_t fd, uint32_t timeout_us_out);
Ret sock_set_tcp_keep_idle(Call& c, uint32_t fd, uint32_t seconds);
Ret sock_get_tcp_keep_idle(Call& c, uint32_t fd, uint32_t seconds_out);
Ret sock_set_tcp_keep_intvl(Call& c, uint32_t fd, uint32_t seconds);
Ret sock_get_tcp_keep_intvl(Call& c, uint32_t fd, uint32_t seconds_out);
Ret sock_set_ip_ttl(Call& c, uint32_t fd, uint32_t ttl);
Ret sock_get_ip_ttl(Call& c, uint32_t fd, uint32_t ttl_out);
Ret sock_set_ip_multicast_ttl(Call& c, uint32_t fd, uint32_t ttl);
Ret sock_get_ip_multicast_ttl(Call& c, uint32_t fd, uint32_t ttl_out);
Ret sock_set_ip_multicast_loop(Call& c, uint32_t fd, uint32_t ipv6, uint32_t enabled);
Ret sock_get_ip_multicast_loop(Call& c, uint32_t fd, uint32_t ipv6, uint32_t enabled_out);
Ret sock_set_ip_add_membership(Call& c, uint32_t fd, uint32_t group, uint32_t interface);
Ret sock_set_ip_drop_membership(Call& c, uint32_t fd, uint32_t group, uint32_t interface);

} // namespace calls

// Reads and writes on fds whose I/O may block (pipes, terminals, sockets):
// they wait with wait_ready() and return Ret::suspend() when a checkpoint is
// requested before any byte moved. Shared by fd_read/fd_write and sock_*.
Ret stream_read(Call& c, FdEntry& entry, std::vector<iovec>& iov, int msg_flags, size_t& n);
Ret stream_write(Call& c, FdEntry& entry, std::vector<iovec>& iov, size_t& n);

// A TCP connect through the gateway (wasi/gateway.h) carried on until the
// gateway answers: success once connected, the connect's error, EAGAIN
// (EALREADY when `again`, EINPROGRESS otherwise, for sock_connect) when a
// non-blocking socket must wait, or a suspend for a checkpoint.
Ret wait_gateway_connect(Call& c, FdEntry& entry, Errno not_yet);

// The socket `fd` (any kind), holding the rights in `needed`: EBADF,
// ENOTCAPABLE, or ENOTSOCK for an fd that is not a socket.
Errno get_socket(Call& c, uint32_t fd, Rights needed, FdEntry*& out);

// The socket extension's address record (layout::wasi_addr) at `addr`:
// EFAULT out of bounds, EPROTONOSUPPORT for a kind that is neither IPv4
// nor IPv6 (as WAMR).
Errno read_wasi_addr(GuestMemory& mem, uint32_t addr, SocketAddress& out);
Errno write_wasi_addr(GuestMemory& mem, uint32_t addr, const SocketAddress& value);

// Writes a filestat record for `st` at guest address `out`.
Errno write_filestat(GuestMemory& mem, uint32_t out, const struct stat& st);

} // namespace tern::wasi
