// The engine that runs compiled code (AOT artifacts or JIT code): a
// runtime::Engine like the interpreter, producing and accepting the same
// wasm view of suspended threads. It needs no LLVM; where the code comes
// from is the provider's business (cli/engine_mode.cpp).
#pragma once

#include "aot/code_image.h"
#include "runtime/engine.h"
#include "util/sha256.h"
#include "wasm/module.h"

#include <functional>
#include <memory>

namespace tern::aot {

// The compiled code for a module (whose sha-256 is given); throws
// tern::Error when there is none.
using CodeProvider =
    std::function<std::shared_ptr<const CodeImage>(const wasm::Module&, const util::Sha256Digest&)>;

std::unique_ptr<runtime::Engine> make_engine(CodeProvider provider);

} // namespace tern::aot
