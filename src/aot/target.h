// The machines tern compiles for, and what "the same target" means when an
// artifact is loaded: same architecture, and a CPU model whose instructions
// this host has.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::aot {

enum class Arch : uint8_t { X86_64 = 1, AArch64 = 2, S390x = 3 };

struct Target {
  Arch arch = Arch::X86_64;
  std::string cpu; // LLVM CPU name; empty means the arch's portable baseline

  // The CPU name actually used: `cpu`, or the baseline.
  std::string cpu_or_default() const;
  // "x86_64", "aarch64" or "s390x" with ":cpu" when not the baseline.
  std::string name() const;
  bool big_endian() const { return arch == Arch::S390x; }
};

std::string_view arch_name(Arch arch);
// Parses "x86_64", "aarch64" or "s390x" (also "x86-64", "arm64").
std::optional<Arch> parse_arch(std::string_view name);
Target host_target();
// The baseline CPU tern compiles for unless told otherwise: x86-64-v2
// (SSE4.2, POPCNT: wasm's rounding and popcnt in one instruction), generic
// ARMv8-A, z13 on s390x.
std::string_view baseline_cpu(Arch arch);
// Empty if this host can run code compiled for `target`, else why not.
std::string host_can_run(const Target& target);
// A short stable name for this host's CPU model and instruction-set
// features, found without LLVM (cpuid, auxv): the JIT's cache key for code
// compiled for "native", so that a cached run never loads the compiler to
// ask LLVM what the host is.
std::string host_cpu_id();

} // namespace tern::aot
