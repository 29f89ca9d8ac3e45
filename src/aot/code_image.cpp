#include "aot/code_image.h"

#include "tern/error.h"

#include <fmt/format.h>

namespace tern::aot {

void CodeImage::attach(ModuleInfo* info) {
  if (!info || info->magic != kModuleInfoMagic)
    throw Error("compiled code: no tern module descriptor at its entry");
  if (info->abi_version != kAbiVersion)
    throw Error(fmt::format("compiled code: ABI {}, this tern runs ABI {}", info->abi_version,
                            kAbiVersion));
  if (info->num_helpers != kNumHelpers || !info->helpers)
    throw Error("compiled code: its helper table does not fit this tern");
  void* const* table = helper_table();
  for (uint32_t i = 0; i < kNumHelpers; ++i) info->helpers[i] = table[i];
  info_ = info;
}

} // namespace tern::aot
