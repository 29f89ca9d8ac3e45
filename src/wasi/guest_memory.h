// Bounds-checked access to the caller's linear memory for WASI calls. Every
// guest pointer goes through here: an out-of-range pointer is EFAULT for the
// guest, never a host crash, and every multi-byte value is little-endian
// whatever the host (runtime::Memory::load_le/store_le). Bytes handed out
// for writing are announced to dirty-page tracking first
// (Memory::before_host_write): a system call may write them.
#pragma once

#include "runtime/memory.h"
#include "wasi/abi.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <sys/uio.h>
#include <type_traits>
#include <vector>

namespace tern::wasi {

class GuestMemory {
public:
  // `memory` may be null (a module without memory): every access is EFAULT.
  explicit GuestMemory(runtime::Memory* memory) : memory_(memory) {}

  bool in_bounds(uint64_t addr, uint64_t len) const {
    return memory_ && memory_->in_bounds(addr, len);
  }

  template <typename T>
  Errno load(uint64_t addr, T& out) const {
    if (!in_bounds(addr, sizeof(T))) return Errno::fault;
    out = runtime::Memory::load_le<T>(memory_->base() + addr);
    return Errno::success;
  }

  template <typename T>
  Errno store(uint64_t addr, T value) {
    if (!in_bounds(addr, sizeof(T))) return Errno::fault;
    runtime::Memory::store_le<T>(memory_->base() + addr, value);
    return Errno::success;
  }

  // The guest bytes [addr, addr + len), to write into.
  Errno bytes(uint64_t addr, uint64_t len, std::span<uint8_t>& out) {
    if (!in_bounds(addr, len)) return Errno::fault;
    memory_->before_host_write(addr, len);
    out = {memory_->base() + addr, static_cast<size_t>(len)};
    return Errno::success;
  }
  // The same, to read.
  Errno bytes(uint64_t addr, uint64_t len, std::span<const uint8_t>& out) const {
    if (!in_bounds(addr, len)) return Errno::fault;
    out = {memory_->base() + addr, static_cast<size_t>(len)};
    return Errno::success;
  }

  Errno write(uint64_t addr, std::span<const uint8_t> data) {
    std::span<uint8_t> dst;
    WASI_TRY(bytes(addr, data.size(), dst));
    std::copy(data.begin(), data.end(), dst.begin());
    return Errno::success;
  }

  // A path or other string argument (ptr, len), copied so that it can be
  // handed to the OS NUL-terminated. An embedded NUL is EINVAL: the OS would
  // silently cut the string there.
  Errno string(uint32_t addr, uint32_t len, std::string& out) const {
    if (!in_bounds(addr, len)) return Errno::fault;
    const auto* p = memory_->base() + addr;
    out.assign(reinterpret_cast<const char*>(p), len);
    if (out.find('\0') != std::string::npos) return Errno::inval;
    return Errno::success;
  }

  // A NUL-terminated string at `addr` (the socket extension passes host
  // names this way) of at most `max` bytes before the NUL: EFAULT when
  // memory ends before a NUL, ENAMETOOLONG when the string is longer.
  Errno c_string(uint32_t addr, uint32_t max, std::string& out) const {
    if (!in_bounds(addr, 1)) return Errno::fault;
    const uint8_t* p = memory_->base() + addr;
    uint64_t available = memory_->size() - addr;
    size_t scan = size_t(std::min<uint64_t>(available, uint64_t(max) + 1));
    const auto* nul = static_cast<const uint8_t*>(std::memchr(p, 0, scan));
    if (!nul) return available <= max ? Errno::fault : Errno::nametoolong;
    out.assign(reinterpret_cast<const char*>(p), size_t(nul - p));
    return Errno::success;
  }

  // Which way the bytes of iovecs go.
  enum class Transfer { FromGuest, IntoGuest };

  // The guest's iovec / ciovec array as host iovecs pointing into linear
  // memory (zero-copy readv/writev). Every buffer is bounds-checked;
  // buffers a call fills (IntoGuest) are announced for writing.
  Errno iovecs(uint32_t addr, uint32_t count, std::vector<iovec>& out, Transfer transfer) const {
    namespace L = layout::iovec;
    if (count > kMaxIovecs) return Errno::inval;
    if (!in_bounds(addr, uint64_t(count) * L::size)) return Errno::fault;
    out.clear();
    for (uint32_t i = 0; i < count; ++i) {
      const uint8_t* rec = memory_->base() + addr + uint64_t(i) * L::size;
      uint32_t buf = runtime::Memory::load_le<uint32_t>(rec + L::buf);
      uint32_t len = runtime::Memory::load_le<uint32_t>(rec + L::buf_len);
      if (!in_bounds(buf, len)) return Errno::fault;
      if (len == 0) continue;
      if (transfer == Transfer::IntoGuest) memory_->before_host_write(buf, len);
      out.push_back({memory_->base() + buf, len});
    }
    return Errno::success;
  }

  static constexpr uint32_t kMaxIovecs = 1024; // IOV_MAX on Linux

private:
  runtime::Memory* memory_;
};

// A structure assembled on the host in guest byte order, then written to
// linear memory in one bounds-checked copy.
template <size_t N>
struct Record {
  std::array<uint8_t, N> bytes{};

  template <typename T>
  void put(uint32_t offset, T value) {
    if constexpr (std::is_enum_v<T>) {
      put(offset, static_cast<std::underlying_type_t<T>>(value));
    } else {
      runtime::Memory::store_le<T>(bytes.data() + offset, value);
    }
  }
  Errno write_to(GuestMemory& memory, uint64_t addr) const { return memory.write(addr, bytes); }
};

} // namespace tern::wasi
