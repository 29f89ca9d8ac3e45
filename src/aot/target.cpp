#include "aot/target.h"

#include <fmt/format.h>
#include <sys/auxv.h>
#include <vector>
#include <xxhash.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace tern::aot {

std::string_view arch_name(Arch arch) {
  switch (arch) {
  case Arch::X86_64:
    return "x86_64";
  case Arch::AArch64:
    return "aarch64";
  case Arch::S390x:
    return "s390x";
  }
  return "unknown";
}

std::optional<Arch> parse_arch(std::string_view name) {
  if (name == "x86_64" || name == "x86-64" || name == "amd64") return Arch::X86_64;
  if (name == "aarch64" || name == "arm64") return Arch::AArch64;
  if (name == "s390x") return Arch::S390x;
  return std::nullopt;
}

std::string_view baseline_cpu(Arch arch) {
  switch (arch) {
  case Arch::X86_64:
    return "x86-64-v2";
  case Arch::AArch64:
    return "generic";
  case Arch::S390x:
    return "z13";
  }
  return "generic";
}

std::string Target::cpu_or_default() const {
  return cpu.empty() ? std::string(baseline_cpu(arch)) : cpu;
}

std::string Target::name() const {
  if (cpu.empty() || cpu == baseline_cpu(arch)) return std::string(arch_name(arch));
  return fmt::format("{}:{}", arch_name(arch), cpu);
}

Target host_target() {
#if defined(__x86_64__)
  return {Arch::X86_64, {}};
#elif defined(__aarch64__)
  return {Arch::AArch64, {}};
#elif defined(__s390x__)
  return {Arch::S390x, {}};
#else
#error "tern's compiled code runs on x86_64, aarch64 and s390x hosts"
#endif
}

std::string host_can_run(const Target& target) {
  const Target host = host_target();
  if (target.arch != host.arch)
    return fmt::format("it is compiled for {}, this host is {}", arch_name(target.arch),
                       arch_name(host.arch));
#if defined(__x86_64__)
  const std::string cpu = target.cpu_or_default();
  if (cpu == "x86-64-v2") {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("sse4.2") || !__builtin_cpu_supports("popcnt"))
      return "it needs an x86-64-v2 CPU (SSE4.2, POPCNT)";
    return {};
  }
  if (cpu == "x86-64") return {};
#endif
  // Other CPU models are the operator's choice (--cpu): trusted as named.
  return {};
}

std::string host_cpu_id() {
  std::vector<uint32_t> facts;
  auto add = [&](std::initializer_list<uint32_t> words) { facts.insert(facts.end(), words); };
#if defined(__x86_64__)
  // Vendor, family/model/stepping and every feature leaf LLVM looks at;
  // XCR0 says which register states the OS saves (AVX, AVX-512).
  for (uint32_t leaf : {0u, 1u, 7u, 0x80000001u}) {
    uint32_t a = 0, b = 0, c = 0, d = 0;
    __cpuid_count(leaf, 0, a, b, c, d);
    if (leaf == 1) b &= 0x0000ffff; // the APIC id and logical count differ per core
    add({leaf, a, b, c, d});
  }
  uint32_t a = 0, b = 0, c = 0, d = 0;
  __cpuid(1, a, b, c, d);
  if (c & bit_OSXSAVE) {
    uint32_t lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    add({lo, hi});
  }
#endif
  add({uint32_t(::getauxval(AT_HWCAP)), uint32_t(::getauxval(AT_HWCAP) >> 32),
       uint32_t(::getauxval(AT_HWCAP2)), uint32_t(::getauxval(AT_HWCAP2) >> 32)});
  std::string platform;
  if (auto* p = reinterpret_cast<const char*>(::getauxval(AT_PLATFORM))) platform = p;
  uint64_t h = XXH3_64bits_withSeed(facts.data(), facts.size() * sizeof(uint32_t),
                                    XXH3_64bits(platform.data(), platform.size()));
  return fmt::format("native-{:016x}", h);
}

} // namespace tern::aot
