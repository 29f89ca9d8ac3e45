// aot/compiler.h in builds without LLVM (the static cross builds): they run
// artifacts compiled elsewhere (`tern compile --target ...`), and say so
// when asked to compile.
#include "aot/compiler.h"

namespace tern::aot {
namespace {
constexpr const char* kNoCompiler =
    "this tern was built without the LLVM compiler; compile the module with a tern that has it "
    "(tern compile --target ...) and pass the artifact";
}

bool compiler_available() {
  return false;
}

Compiled<std::vector<uint8_t>> compile_artifact(const wasm::Module&, const util::Sha256Digest&,
                                                const CompileOptions&) {
  return {{}, kNoCompiler};
}

Compiled<std::shared_ptr<const CodeImage>> jit_compile(const wasm::Module&,
                                                       const util::Sha256Digest&,
                                                       const CompileOptions&, const std::string&) {
  return {{}, kNoCompiler};
}

} // namespace tern::aot
