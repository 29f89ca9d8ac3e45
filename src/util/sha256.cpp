#include "util/sha256.h"

#include "util/hex.h"

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
  return to_hex(std::span<const uint8_t>(digest));
}

} // namespace tern::util
