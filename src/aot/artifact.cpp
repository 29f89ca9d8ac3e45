#include "aot/artifact.h"

#include "aot/abi.h"
#include "aot/elf_loader.h"
#include "tern/error.h"
#include "tern/version.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <xxhash.h>

namespace tern::aot {
namespace {

// The header, little-endian on every host (docs/aot.md).
constexpr char kMagic[8] = {'T', 'E', 'R', 'N', '-', 'A', 'O', 'T'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 160;
constexpr size_t kVersionField = 32;
constexpr size_t kCpuField = 32;

struct Writer {
  std::vector<uint8_t>& out;
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
  }
  void text(const std::string& s, size_t width) {
    for (size_t i = 0; i < width; ++i) out.push_back(i < s.size() ? uint8_t(s[i]) : 0);
  }
  void bytes(std::span<const uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }
};

struct Reader {
  std::span<const uint8_t> in;
  size_t at = 0;
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(in[at++]) << (8 * i);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(in[at++]) << (8 * i);
    return v;
  }
  std::string text(size_t width) {
    std::string s(reinterpret_cast<const char*>(in.data() + at), width);
    at += width;
    s.resize(std::strlen(s.c_str()));
    return s;
  }
};

} // namespace

ArtifactHeader current_header(const Target& target, uint32_t flags,
                              const util::Sha256Digest& module_hash) {
  ArtifactHeader h;
  h.tern_version = kVersion;
  h.abi_version = kAbiVersion;
  h.target = target;
  h.flags = flags;
  h.module_hash = module_hash;
  return h;
}

std::vector<uint8_t> make_artifact(const ArtifactHeader& header, std::span<const uint8_t> image) {
  std::vector<uint8_t> out;
  out.reserve(kHeaderSize + image.size());
  Writer w{out};
  w.bytes(std::span(reinterpret_cast<const uint8_t*>(kMagic), sizeof kMagic));
  w.u32(kFormatVersion);
  w.u32(kHeaderSize);
  w.text(header.tern_version, kVersionField);
  w.u32(header.abi_version);
  w.u32(static_cast<uint32_t>(header.target.arch));
  w.text(header.target.cpu_or_default(), kCpuField);
  w.u32(header.flags);
  w.u32(0);
  w.bytes(header.module_hash);
  w.u64(image.size());
  w.u64(XXH3_64bits(image.data(), image.size()));
  while (out.size() < kHeaderSize) out.push_back(0);
  w.bytes(image);
  return out;
}

ArtifactView read_artifact(std::span<const uint8_t> bytes, const std::string& name) {
  auto refuse = [&](const std::string& why) {
    return Error(fmt::format("{}: not a usable tern artifact: {}", name, why));
  };
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw refuse("it does not start with tern's artifact signature");
  if (bytes.size() < kHeaderSize) throw refuse("the file is truncated (incomplete header)");
  Reader r{bytes, sizeof kMagic};
  uint32_t format = r.u32();
  uint32_t header_size = r.u32();
  if (format != kFormatVersion || header_size != kHeaderSize)
    throw refuse(fmt::format("artifact format {} is not the format {} this tern reads", format,
                             kFormatVersion));
  ArtifactView view;
  ArtifactHeader& h = view.header;
  h.tern_version = r.text(kVersionField);
  h.abi_version = r.u32();
  uint32_t arch = r.u32();
  if (arch < uint32_t(Arch::X86_64) || arch > uint32_t(Arch::S390x))
    throw refuse(fmt::format("unknown architecture code {}", arch));
  h.target.arch = static_cast<Arch>(arch);
  h.target.cpu = r.text(kCpuField);
  h.flags = r.u32();
  r.u32();
  std::copy_n(bytes.begin() + long(r.at), h.module_hash.size(), h.module_hash.begin());
  r.at += h.module_hash.size();
  uint64_t image_size = r.u64();
  uint64_t checksum = r.u64();
  if (bytes.size() - kHeaderSize < image_size)
    throw refuse(fmt::format("the file is truncated ({} bytes of code expected, {} present)",
                             image_size, bytes.size() - kHeaderSize));
  if (bytes.size() - kHeaderSize > image_size) throw refuse("the file has trailing bytes");
  view.image = bytes.subspan(kHeaderSize, image_size);
  if (XXH3_64bits(view.image.data(), view.image.size()) != checksum)
    throw refuse("the code does not match its checksum (the file is damaged)");
  return view;
}

void check_artifact(const ArtifactHeader& h, const util::Sha256Digest& module_hash,
                    const std::string& name) {
  if (h.tern_version != kVersion || h.abi_version != kAbiVersion)
    throw Error(fmt::format("{}: compiled by tern {} (ABI {}), this is tern {} (ABI {}); "
                            "compile the module again",
                            name, h.tern_version, h.abi_version, kVersion, kAbiVersion));
  if (h.module_hash != module_hash)
    throw Error(fmt::format("{}: compiled from another module (sha-256 {}, this module is {})",
                            name, util::to_hex(h.module_hash), util::to_hex(module_hash)));
  if (std::string why = host_can_run(h.target); !why.empty())
    throw Error(fmt::format("{}: cannot run here: {}", name, why));
}

std::unique_ptr<CodeImage> load_artifact(std::span<const uint8_t> bytes,
                                         const util::Sha256Digest& module_hash,
                                         const std::string& name) {
  ArtifactView view = read_artifact(bytes, name);
  check_artifact(view.header, module_hash, name);
  auto image = load_elf_image(view.image, name);
  if (!std::equal(module_hash.begin(), module_hash.end(), image->info().module_hash))
    throw Error(fmt::format("{}: the code inside is for another module", name));
  if (image->info().flags != view.header.flags)
    throw Error(fmt::format("{}: the code inside does not match its header", name));
  return image;
}

} // namespace tern::aot
