// Compiled code for one module, loaded and ready to call: from an artifact
// (aot/elf_loader.h) or from the JIT (aot/llvm/jit.cpp). The engine only
// sees the module's descriptor.
#pragma once

#include "aot/abi.h"

namespace tern::aot {

class CodeImage {
public:
  virtual ~CodeImage() = default;
  const ModuleInfo& info() const { return *info_; }

protected:
  // Checks the descriptor and fills its helper table; throws tern::Error if
  // it is not tern's or not this ABI.
  void attach(ModuleInfo* info);

private:
  const ModuleInfo* info_ = nullptr;
};

} // namespace tern::aot
