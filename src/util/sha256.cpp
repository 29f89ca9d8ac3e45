#include "util/sha256.h"

#include <nettle/sha2.h>

namespace tern::util {

Sha256Digest sha256(std::span<const uint8_t> bytes) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, bytes.size(), bytes.data());
  Sha256Digest digest;
  sha256_digest(&ctx, digest.size(), digest.data());
  return digest;
}

std::string to_hex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (uint8_t b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

} // namespace tern::util
