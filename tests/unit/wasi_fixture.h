// Test support for the WASI layer: a scratch directory, a one-page guest
// memory, a WasiContext with that directory preopened, and helpers that put
// arguments into guest memory and read results back (little-endian, as the
// guest would).
#pragma once

#include "runtime/interrupt.h"
#include "runtime/memory.h"
#include "wasi/calls.h"
#include "wasi/context.h"

#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::test {

// A directory under /tmp, removed with everything in it.
class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/tern-wasi-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  void write(const std::string& rel, const std::string& content) const {
    std::ofstream(*this / rel, std::ios::binary) << content;
  }
  std::string read(const std::string& rel) const {
    std::ifstream in(*this / rel, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  void mkdir(const std::string& rel) const { std::filesystem::create_directories(*this / rel); }
  void symlink(const std::string& target, const std::string& rel) const {
    ASSERT_EQ(::symlink(target.c_str(), (*this / rel).c_str()), 0);
  }
  bool exists(const std::string& rel) const {
    struct stat st;
    return ::lstat((*this / rel).c_str(), &st) == 0;
  }

private:
  std::string path_;
};

class WasiTest : public ::testing::Test {
protected:
  static constexpr uint32_t kPreopenFd = 3; // the scratch directory, seen as "/sandbox"

  WasiTest() : memory_(wasm::MemoryType{{1, 1, false}}) {}

  // A context with the scratch directory's "sandbox" subdirectory preopened
  // (so that "outside" is a sibling the tests can check), plus `extra`.
  void start(wasi::WasiOptions options = {}) {
    dir_.mkdir("sandbox");
    dir_.mkdir("outside");
    options.preopens.insert(options.preopens.begin(), {dir_ / "sandbox", "/sandbox"});
    ctx_ = std::make_unique<wasi::WasiContext>(std::move(options));
  }
  void SetUp() override { start(); }

  wasi::Call call() { return {*ctx_, wasi::GuestMemory(&memory_), interrupt_}; }
  uint8_t* mem() { return memory_.base(); }
  uint32_t mem_size() const { return uint32_t(memory_.size()); }

  // Guest memory helpers.
  template <typename T>
  T load(uint32_t addr) {
    return runtime::Memory::load_le<T>(mem() + addr);
  }
  template <typename T>
  void store(uint32_t addr, T v) {
    runtime::Memory::store_le<T>(mem() + addr, v);
  }
  // Places `s` at `addr`; returns its length (the guest's (ptr, len)).
  uint32_t put(uint32_t addr, const std::string& s) {
    std::memcpy(mem() + addr, s.data(), s.size());
    return uint32_t(s.size());
  }
  std::string get(uint32_t addr, uint32_t len) {
    return {reinterpret_cast<const char*>(mem() + addr), len};
  }
  // One iovec at `iov` describing [buf, buf + len).
  void iovec_at(uint32_t iov, uint32_t buf, uint32_t len) {
    store<uint32_t>(iov, buf);
    store<uint32_t>(iov + 4, len);
  }

  // path_open under the preopen; returns the new fd (or fails the test).
  uint32_t open(const std::string& path, uint32_t oflags, wasi::Rights rights, uint32_t fdflags = 0,
                wasi::Errno expect = wasi::Errno::success) {
    auto c = call();
    uint32_t len = put(kPath, path);
    wasi::Ret r = wasi::calls::path_open(c, kPreopenFd, wasi::lookupflag::symlink_follow, kPath,
                                         len, oflags, rights, rights, fdflags, kOut);
    EXPECT_EQ(r.err, expect) << "path_open " << path;
    EXPECT_FALSE(r.stop.has_value());
    return load<uint32_t>(kOut);
  }

  // fd_write of `data` through one iovec; returns the errno.
  wasi::Errno write(uint32_t fd, const std::string& data) {
    auto c = call();
    uint32_t len = put(kBuf, data);
    iovec_at(kIov, kBuf, len);
    wasi::Ret r = wasi::calls::fd_write(c, fd, kIov, 1, kOut);
    if (r.err == wasi::Errno::success) {
      EXPECT_EQ(load<uint32_t>(kOut), len);
    }
    return r.err;
  }

  // fd_read of up to `max` bytes; the bytes read, or the errno as text.
  std::string read(uint32_t fd, uint32_t max = 256) {
    auto c = call();
    iovec_at(kIov, kBuf, max);
    wasi::Ret r = wasi::calls::fd_read(c, fd, kIov, 1, kOut);
    if (r.stop) return "<stopped>";
    if (r.err != wasi::Errno::success) return "<errno " + std::to_string(int(r.err)) + ">";
    return get(kBuf, load<uint32_t>(kOut));
  }

  // Guest addresses the helpers use.
  static constexpr uint32_t kPath = 0x100;
  static constexpr uint32_t kPath2 = 0x300;
  static constexpr uint32_t kOut = 0x500;
  static constexpr uint32_t kOut2 = 0x580; // kOut has room for two events or a filestat
  static constexpr uint32_t kIov = 0x600;
  static constexpr uint32_t kBuf = 0x1000;

  TempDir dir_;
  runtime::Memory memory_;
  runtime::Interrupt interrupt_;
  std::unique_ptr<wasi::WasiContext> ctx_;
};

} // namespace tern::test
