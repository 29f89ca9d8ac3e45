// The WebAssembly 2.0 validation algorithm. Besides accepting or rejecting a
// module it records, per function, the operand stack at every stable point
// (FunctionInfo), which the interpreter, the AOT compiler and snapshots use.
#pragma once

#include "wasm/module.h"

namespace tern::wasm {

// Throws ValidationError on an invalid module; fills Function::info.
void validate_module(Module& module);

} // namespace tern::wasm
