// SHA-256 (nettle) for module identity: snapshots name their module by it,
// AOT caches key compiled code by it.
#pragma once

#include <array>
#include <cstdint>
#include <nettle/sha2.h>
#include <span>
#include <string>

namespace tern::util {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::span<const uint8_t> bytes);

// The same over bytes that arrive piecewise (a snapshot stream).
class Sha256 {
public:
  Sha256() { sha256_init(&ctx_); }
  void update(std::span<const uint8_t> bytes) { sha256_update(&ctx_, bytes.size(), bytes.data()); }
  // The digest of everything so far; the hash starts over afterwards.
  Sha256Digest digest();

private:
  sha256_ctx ctx_;
};

// Lower-case hex, 64 characters.
std::string to_hex(const Sha256Digest& digest);

} // namespace tern::util
