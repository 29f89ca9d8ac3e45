#include "aot/llvm/part_cache.h"

#include "util/file.h"
#include "util/sha256.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

namespace tern::aot::llvmc {
namespace {

std::span<const uint8_t> as_bytes(std::span<const char> chars) {
  return {reinterpret_cast<const uint8_t*>(chars.data()), chars.size()};
}

} // namespace

PartCache::PartCache(std::string dir) : dir_(std::move(dir)) {}

std::string PartCache::path_of(std::span<const char> bitcode) const {
  return dir_ + "/" + util::to_hex(util::sha256(as_bytes(bitcode))) + ".o";
}

std::optional<std::vector<char>> PartCache::find(std::span<const char> bitcode) const {
  if (dir_.empty()) return std::nullopt;
  const std::string path = path_of(bitcode);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  std::vector<uint8_t> file;
  try {
    file = util::read_file(path);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const size_t digest_size = util::Sha256Digest{}.size();
  if (file.size() <= digest_size) return std::nullopt;
  const std::span<const uint8_t> object(file.data() + digest_size, file.size() - digest_size);
  const util::Sha256Digest digest = util::sha256(object);
  if (!std::equal(digest.begin(), digest.end(), file.begin())) return std::nullopt;
  return std::vector<char>(object.begin(), object.end());
}

void PartCache::keep(std::span<const char> bitcode, const std::vector<char>& object) const {
  if (dir_.empty()) return;
  const util::Sha256Digest digest = util::sha256(as_bytes(object));
  std::vector<uint8_t> file(digest.begin(), digest.end());
  file.insert(file.end(), object.begin(), object.end());
  try {
    util::create_directories(dir_);
    util::write_file_atomic(path_of(bitcode), file);
  } catch (const std::exception&) {
  }
}

} // namespace tern::aot::llvmc
