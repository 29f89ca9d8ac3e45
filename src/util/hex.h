// Bytes as lower-case hex text, two characters a byte: digests, ids and
// keys in files, messages and logs.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace tern::util {

std::string to_hex(std::span<const uint8_t> bytes);

} // namespace tern::util
