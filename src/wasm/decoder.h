// Binary format → Module. Checks everything the spec calls "malformed";
// type checking is the validator's job (validator.h).
#pragma once

#include "wasm/module.h"

#include <cstdint>
#include <vector>

namespace tern::wasm {

// Throws DecodeError (absolute offset + reason) on malformed input.
Module decode_module(std::vector<uint8_t> bytes);

} // namespace tern::wasm
