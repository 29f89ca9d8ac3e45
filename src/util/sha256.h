// SHA-256 (nettle) for module identity: snapshots name their module by it,
// AOT caches key compiled code by it.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace tern::util {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::span<const uint8_t> bytes);

// Lower-case hex, 64 characters.
std::string to_hex(const Sha256Digest& digest);

} // namespace tern::util
