#include "aot/target.h"

#include <fmt/format.h>

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

} // namespace tern::aot
