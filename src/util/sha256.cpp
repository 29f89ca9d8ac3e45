#include "util/sha256.h"

#include "util/hex.h"

namespace tern::util {

Sha256Digest sha256(std::span<const uint8_t> bytes) {
  Sha256 h;
  h.update(bytes);
  return h.digest();
}

Sha256Digest Sha256::digest() {
  Sha256Digest out;
  sha256_digest(&ctx_, out.size(), out.data());
  return out;
}

std::string to_hex(const Sha256Digest& digest) {
  return to_hex(std::span<const uint8_t>(digest));
}

} // namespace tern::util
