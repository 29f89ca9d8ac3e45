#include "wasi/wasi.h"

#include "runtime/thread.h"
#include "wasi/calls.h"

#include <algorithm>
#include <iterator>
#include <type_traits>
#include <utility>

namespace tern::wasi {
namespace {

using runtime::HostResult;
using runtime::Slot;

template <typename T>
constexpr wasm::ValType val_type() {
  static_assert(std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t>);
  return sizeof(T) == 8 ? wasm::ValType::I64 : wasm::ValType::I32;
}

// Derives a host function's wasm type and argument unpacking from the C++
// signature of its implementation: uint32_t parameters are i32, uint64_t
// are i64; a Ret result is the i32 errno, a HostResult means no result.
template <typename F>
struct Adapter;

template <typename R, typename... A>
struct Adapter<R (*)(Call&, A...)> {
  static wasm::FuncType type() {
    wasm::FuncType t{{val_type<A>()...}, {}};
    if constexpr (std::is_same_v<R, Ret>) t.results = {wasm::ValType::I32};
    return t;
  }

  template <R (*Fn)(Call&, A...)>
  static HostResult invoke(Call& c, std::span<const Slot> args, std::span<Slot> results) {
    return invoke<Fn>(c, args, results, std::index_sequence_for<A...>{});
  }

  template <R (*Fn)(Call&, A...), size_t... I>
  static HostResult invoke(Call& c, std::span<const Slot> args, std::span<Slot> results,
                           std::index_sequence<I...>) {
    if constexpr (std::is_same_v<R, Ret>) {
      Ret r = Fn(c, static_cast<A>(args[I])...);
      if (r.stop) return std::move(*r.stop);
      results[0] = static_cast<uint16_t>(r.err);
      return HostResult::ok();
    } else {
      return Fn(c, static_cast<A>(args[I])...);
    }
  }
};

template <auto Fn>
runtime::HostFunction make(WasiContext& ctx, const char* name) {
  using A = Adapter<decltype(Fn)>;
  auto callback = [&ctx](runtime::CallContext& cc, std::span<const Slot> args,
                         std::span<Slot> results) {
    std::unique_lock lock(ctx.calls_mutex());
    Call call{ctx, GuestMemory(cc.memory()), cc.thread.store().interrupt(), &lock};
    return A::template invoke<Fn>(call, args, results);
  };
  return {A::type(), std::move(callback), kModuleName, name};
}

// Every function of the module, by name: made only when a program imports
// it (a HostFunction costs allocations; most programs import a handful).
struct WasiFunction {
  const char* name;
  runtime::HostFunction (*make)(WasiContext&, const char*);
};

template <auto Fn>
constexpr WasiFunction entry(const char* name) {
  return {name, &make<Fn>};
}

#define TERN_WASI(name) entry<&calls::name>(#name)
constexpr WasiFunction kFunctions[] = {
    TERN_WASI(args_get),
    TERN_WASI(args_sizes_get),
    TERN_WASI(environ_get),
    TERN_WASI(environ_sizes_get),
    TERN_WASI(clock_res_get),
    TERN_WASI(clock_time_get),
    TERN_WASI(fd_advise),
    TERN_WASI(fd_allocate),
    TERN_WASI(fd_close),
    TERN_WASI(fd_datasync),
    TERN_WASI(fd_fdstat_get),
    TERN_WASI(fd_fdstat_set_flags),
    TERN_WASI(fd_fdstat_set_rights),
    TERN_WASI(fd_filestat_get),
    TERN_WASI(fd_filestat_set_size),
    TERN_WASI(fd_filestat_set_times),
    TERN_WASI(fd_pread),
    TERN_WASI(fd_prestat_get),
    TERN_WASI(fd_prestat_dir_name),
    TERN_WASI(fd_pwrite),
    TERN_WASI(fd_read),
    TERN_WASI(fd_readdir),
    TERN_WASI(fd_renumber),
    TERN_WASI(fd_seek),
    TERN_WASI(fd_sync),
    TERN_WASI(fd_tell),
    TERN_WASI(fd_write),
    TERN_WASI(path_create_directory),
    TERN_WASI(path_filestat_get),
    TERN_WASI(path_filestat_set_times),
    TERN_WASI(path_link),
    TERN_WASI(path_open),
    TERN_WASI(path_readlink),
    TERN_WASI(path_remove_directory),
    TERN_WASI(path_rename),
    TERN_WASI(path_symlink),
    TERN_WASI(path_unlink_file),
    TERN_WASI(poll_oneoff),
    TERN_WASI(proc_exit),
    TERN_WASI(proc_raise),
    TERN_WASI(sched_yield),
    TERN_WASI(random_get),
    TERN_WASI(sock_accept),
    TERN_WASI(sock_recv),
    TERN_WASI(sock_send),
    TERN_WASI(sock_shutdown),
    // The socket extension (WAMR's lib-socket).
    TERN_WASI(sock_open),
    TERN_WASI(sock_close),
    TERN_WASI(sock_bind),
    TERN_WASI(sock_listen),
    TERN_WASI(sock_connect),
    TERN_WASI(sock_addr_local),
    TERN_WASI(sock_addr_remote),
    TERN_WASI(sock_addr_resolve),
    TERN_WASI(sock_send_to),
    TERN_WASI(sock_recv_from),
    TERN_WASI(sock_set_reuse_addr),
    TERN_WASI(sock_get_reuse_addr),
    TERN_WASI(sock_set_reuse_port),
    TERN_WASI(sock_get_reuse_port),
    TERN_WASI(sock_set_keep_alive),
    TERN_WASI(sock_get_keep_alive),
    TERN_WASI(sock_set_broadcast),
    TERN_WASI(sock_get_broadcast),
    TERN_WASI(sock_set_tcp_no_delay),
    TERN_WASI(sock_get_tcp_no_delay),
    TERN_WASI(sock_set_tcp_quick_ack),
    TERN_WASI(sock_get_tcp_quick_ack),
    TERN_WASI(sock_set_tcp_fastopen_connect),
    TERN_WASI(sock_get_tcp_fastopen_connect),
    TERN_WASI(sock_set_ipv6_only),
    TERN_WASI(sock_get_ipv6_only),
    TERN_WASI(sock_set_linger),
    TERN_WASI(sock_get_linger),
    TERN_WASI(sock_set_recv_buf_size),
    TERN_WASI(sock_get_recv_buf_size),
    TERN_WASI(sock_set_send_buf_size),
    TERN_WASI(sock_get_send_buf_size),
    TERN_WASI(sock_set_recv_timeout),
    TERN_WASI(sock_get_recv_timeout),
    TERN_WASI(sock_set_send_timeout),
    TERN_WASI(sock_get_send_timeout),
    TERN_WASI(sock_set_tcp_keep_idle),
    TERN_WASI(sock_get_tcp_keep_idle),
    TERN_WASI(sock_set_tcp_keep_intvl),
    TERN_WASI(sock_get_tcp_keep_intvl),
    TERN_WASI(sock_set_ip_ttl),
    TERN_WASI(sock_get_ip_ttl),
    TERN_WASI(sock_set_ip_multicast_ttl),
    TERN_WASI(sock_get_ip_multicast_ttl),
    TERN_WASI(sock_set_ip_multicast_loop),
    TERN_WASI(sock_get_ip_multicast_loop),
    TERN_WASI(sock_set_ip_add_membership),
    TERN_WASI(sock_set_ip_drop_membership),
};
#undef TERN_WASI

} // namespace

std::vector<runtime::HostFunction> host_functions(WasiContext& ctx) {
  std::vector<runtime::HostFunction> out;
  out.reserve(std::size(kFunctions));
  for (const WasiFunction& f : kFunctions) out.push_back(f.make(ctx, f.name));
  return out;
}

void register_wasi(WasiContext& ctx, runtime::Store& store, runtime::Linker& linker,
                   const wasm::Module& module) {
  std::vector<std::string_view> defined; // a name imported twice is one function
  for (const wasm::Import& im : module.imports) {
    if (im.kind != wasm::ExternKind::Func || im.module != kModuleName) continue;
    if (std::ranges::find(defined, im.name) != defined.end()) continue;
    defined.push_back(im.name);
    auto f =
        std::ranges::find_if(kFunctions, [&](const WasiFunction& w) { return im.name == w.name; });
    if (f == std::end(kFunctions)) continue; // resolve() reports it as unknown
    linker.define(kModuleName, im.name,
                  runtime::Extern::of(store.add_host_function(f->make(ctx, f->name))));
  }
}

} // namespace tern::wasi
