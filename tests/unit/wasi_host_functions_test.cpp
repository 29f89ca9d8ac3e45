// wasi_snapshot_preview1 as host functions: the wasm signatures derived
// from the C++ ones, and calls through the host-function ABI (the caller's
// memory, the store's interrupt, errno in the result slot).
#include "interp/engine.h"
#include "runtime/instance.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "wasi/wasi.h"
#include "wasi_fixture.h"

#include <map>

namespace tern::test {
namespace {

using wasm::ValType;
constexpr ValType I32 = ValType::I32, I64 = ValType::I64;

class WasiHostTest : public WasiTest {
protected:
  void SetUp() override {
    WasiTest::SetUp();
    for (auto& fn : wasi::host_functions(*ctx_)) fns_.emplace(fn.name, std::move(fn));
    instance_.memories.push_back(&memory_);
  }
  runtime::HostResult invoke(const std::string& name, std::vector<runtime::Slot> args,
                             runtime::Slot& result, runtime::ModuleInstance* caller) {
    runtime::CallContext cc{thread_, caller};
    runtime::Slot results[1] = {0xDEAD};
    auto r = fns_.at(name).callback(
        cc, args, std::span<runtime::Slot>(results, fns_.at(name).type.results.size()));
    result = results[0];
    return r;
  }

  std::map<std::string, runtime::HostFunction> fns_;
  runtime::Store store_{interp::make_engine()};
  runtime::Thread thread_{store_};
  runtime::ModuleInstance instance_{store_, std::make_shared<wasm::Module>()};
};

TEST_F(WasiHostTest, Preview1Signatures) {
  EXPECT_EQ(fns_.size(), 46u + 48u); // preview1, and the socket extension
  for (const auto& [name, fn] : fns_) EXPECT_EQ(fn.module_name, "wasi_snapshot_preview1");
  using FT = wasm::FuncType;
  std::map<std::string, FT> expected = {
      {"args_get", FT{{I32, I32}, {I32}}},
      {"clock_time_get", FT{{I32, I64, I32}, {I32}}},
      {"fd_advise", FT{{I32, I64, I64, I32}, {I32}}},
      {"fd_fdstat_set_rights", FT{{I32, I64, I64}, {I32}}},
      {"fd_filestat_set_times", FT{{I32, I64, I64, I32}, {I32}}},
      {"fd_pread", FT{{I32, I32, I32, I64, I32}, {I32}}},
      {"fd_readdir", FT{{I32, I32, I32, I64, I32}, {I32}}},
      {"fd_seek", FT{{I32, I64, I32, I32}, {I32}}},
      {"fd_write", FT{{I32, I32, I32, I32}, {I32}}},
      {"path_filestat_set_times", FT{{I32, I32, I32, I32, I64, I64, I32}, {I32}}},
      {"path_link", FT{{I32, I32, I32, I32, I32, I32, I32}, {I32}}},
      {"path_open", FT{{I32, I32, I32, I32, I32, I64, I64, I32, I32}, {I32}}},
      {"path_symlink", FT{{I32, I32, I32, I32, I32}, {I32}}},
      {"poll_oneoff", FT{{I32, I32, I32, I32}, {I32}}},
      {"proc_exit", FT{{I32}, {}}},
      {"proc_raise", FT{{I32}, {I32}}},
      {"sched_yield", FT{{}, {I32}}},
      {"sock_recv", FT{{I32, I32, I32, I32, I32, I32}, {I32}}},
      {"sock_shutdown", FT{{I32, I32}, {I32}}},
      // The socket extension, as WAMR's lib-socket imports it.
      {"sock_open", FT{{I32, I32, I32, I32}, {I32}}},
      {"sock_bind", FT{{I32, I32}, {I32}}},
      {"sock_addr_resolve", FT{{I32, I32, I32, I32, I32, I32}, {I32}}},
      {"sock_send_to", FT{{I32, I32, I32, I32, I32, I32}, {I32}}},
      {"sock_recv_from", FT{{I32, I32, I32, I32, I32, I32}, {I32}}},
      {"sock_set_recv_timeout", FT{{I32, I64}, {I32}}},
      {"sock_get_recv_timeout", FT{{I32, I32}, {I32}}},
      {"sock_set_linger", FT{{I32, I32, I32}, {I32}}},
      {"sock_get_linger", FT{{I32, I32, I32}, {I32}}},
      {"sock_set_ip_multicast_loop", FT{{I32, I32, I32}, {I32}}},
      {"sock_set_ip_add_membership", FT{{I32, I32, I32}, {I32}}},
  };
  for (const auto& [name, type] : expected) {
    ASSERT_TRUE(fns_.count(name)) << name;
    EXPECT_EQ(fns_.at(name).type, type) << name;
  }
}

TEST_F(WasiHostTest, CallsUseTheCallersMemory) {
  uint32_t fd = open("out.txt", wasi::oflag::creat, wasi::right::fd_write | wasi::right::fd_seek);
  uint32_t len = put(kBuf, "via the ABI");
  iovec_at(kIov, kBuf, len);
  runtime::Slot errno_slot = 0;
  auto r = invoke("fd_write", {fd, kIov, 1, kOut}, errno_slot, &instance_);
  EXPECT_EQ(r.status, runtime::HostStatus::Ok);
  EXPECT_EQ(errno_slot, 0u);
  EXPECT_EQ(load<uint32_t>(kOut), len);
  EXPECT_EQ(dir_.read("sandbox/out.txt"), "via the ABI");
  // No caller instance, so no memory: the pointer cannot be used.
  r = invoke("fd_write", {fd, kIov, 1, kOut}, errno_slot, nullptr);
  EXPECT_EQ(r.status, runtime::HostStatus::Ok);
  EXPECT_EQ(errno_slot, uint64_t(wasi::Errno::fault));
  // An i64 argument arrives whole.
  r = invoke("fd_seek", {fd, uint64_t(-3), uint32_t(wasi::Whence::end), kOut}, errno_slot,
             &instance_);
  EXPECT_EQ(errno_slot, 0u);
  EXPECT_EQ(load<uint64_t>(kOut), len - 3);
}

TEST_F(WasiHostTest, ExitAndSuspendStopTheCaller) {
  runtime::Slot unused = 0;
  auto r = invoke("proc_exit", {3}, unused, &instance_);
  EXPECT_EQ(r.status, runtime::HostStatus::Exit);
  EXPECT_EQ(r.exit_code, 3);
  // A blocking read sees the store's checkpoint request.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  wasi::FdEntry e;
  e.kind = wasi::FdKind::Fifo;
  e.host.reset(p[0]);
  e.rights_base = wasi::right::stream;
  ctx_->fds().insert_at(9, std::move(e));
  iovec_at(kIov, kBuf, 16);
  store_.interrupt().request();
  runtime::Slot errno_slot = 0xDEAD;
  r = invoke("fd_read", {9, kIov, 1, kOut}, errno_slot, &instance_);
  EXPECT_EQ(r.status, runtime::HostStatus::Suspend);
  EXPECT_EQ(errno_slot, 0xDEADu) << "a suspended call writes no result";
  store_.interrupt().clear();
  ::close(p[1]);
}

} // namespace
} // namespace tern::test
