// Test helper: WebAssembly text → binary with wabt's wat2wasm.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tern::test {

// Assembles `wat` (fails the calling test via exception on wat2wasm errors).
// Extra wat2wasm flags may be passed, e.g. "--no-check" for invalid modules.
std::vector<uint8_t> wat_to_wasm(const std::string& wat, const std::string& flags = "");

} // namespace tern::test
