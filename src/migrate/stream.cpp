#include "migrate/stream.h"

#include "migrate/channel.h"
#include "tern/error.h"

#include <cstring>
#include <fmt/format.h>

namespace tern::migrate {
namespace {

constexpr size_t kHeaderBytes = 16;

} // namespace

std::string tag_text(const snapshot::Tag& tag) {
  std::string out;
  for (char c : tag) out.push_back(c > 0x20 && c < 0x7F ? c : '?');
  return out;
}

std::vector<uint8_t> encode_hello(const Hello& h) {
  snapshot::PayloadWriter p;
  p.string(h.mode);
  p.u32(h.timeout_ms);
  p.u32(static_cast<uint32_t>(h.guest_dirs.size()));
  for (const std::string& d : h.guest_dirs) p.string(d);
  return std::move(p.out());
}

Hello decode_hello(std::span<const uint8_t> payload, const std::string& what) {
  snapshot::PayloadReader r(payload, what);
  Hello h;
  h.mode = r.string();
  h.timeout_ms = r.u32();
  if (h.timeout_ms == 0) r.fail("a timeout of 0 ms");
  const uint32_t n = r.count(4, "directories");
  for (uint32_t i = 0; i < n; ++i) h.guest_dirs.push_back(r.string());
  r.expect_end();
  return h;
}

std::vector<uint8_t> encode_round_end(const RoundEnd& e) {
  snapshot::PayloadWriter p;
  p.u32(e.round);
  p.u64(e.pages_sent);
  return std::move(p.out());
}

RoundEnd decode_round_end(std::span<const uint8_t> payload, const std::string& what) {
  snapshot::PayloadReader r(payload, what);
  RoundEnd e;
  e.round = r.u32();
  e.pages_sent = r.u64();
  r.expect_end();
  return e;
}

std::vector<uint8_t> encode_text(std::string_view text) {
  snapshot::PayloadWriter p;
  p.string(text.substr(0, 4096));
  return std::move(p.out());
}

std::string decode_text(std::span<const uint8_t> payload, const std::string& what) {
  snapshot::PayloadReader r(payload, what);
  std::string text = r.string();
  r.expect_end();
  // Shown to the user: no control characters from the peer.
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  return text;
}

void MessageWriter::header() {
  uint8_t h[kHeaderBytes] = {};
  std::memcpy(h, kStreamMagic.data(), kStreamMagic.size());
  for (int i = 0; i < 4; ++i) h[8 + i] = static_cast<uint8_t>(kStreamVersion >> (8 * i));
  sink_.write(h);
}

void MessageWriter::send(const snapshot::Tag& tag, std::span<const uint8_t> payload,
                         bool optional) {
  snapshot::write_section(sink_, tag, optional, payload);
}

void MessageReader::header() {
  uint8_t h[kHeaderBytes];
  if (!source_.read_exact(h))
    throw Error(fmt::format("{} closed the connection before the migration stream began", peer_));
  if (std::memcmp(h, kStreamMagic.data(), kStreamMagic.size()) != 0)
    throw Error(fmt::format("{} does not send a tern migration stream (wrong magic bytes)", peer_));
  const uint32_t version = h[8] | h[9] << 8 | h[10] << 16 | uint32_t(h[11]) << 24;
  if (version != kStreamVersion)
    throw Error(fmt::format("{} speaks migration stream version {}; this tern speaks version {}",
                            peer_, version, kStreamVersion));
  for (int i = 12; i < 16; ++i)
    if (h[i] != 0) throw Error(fmt::format("{}: unknown migration stream flags", peer_));
  offset_ = kHeaderBytes;
}

const snapshot::Section& MessageReader::next() {
  try {
    if (!snapshot::read_section(source_, offset_, section_))
      throw Error(fmt::format("the stream ended at byte {}", offset_));
  } catch (const ChannelError&) {
    throw; // names the peer already
  } catch (const Error& e) {
    throw Error(fmt::format("migration stream from {}: {}", peer_, e.what()));
  }
  offset_ += snapshot::section_bytes(section_.length);
  return section_;
}

const snapshot::Section& MessageReader::expect(std::initializer_list<snapshot::Tag> tags,
                                               const char* waiting) {
  const snapshot::Section& s = next();
  for (const snapshot::Tag& t : tags)
    if (s.tag == t) return s;
  throw Error(fmt::format("migration stream from {}: unexpected {} while waiting for {}", peer_,
                          tag_text(s.tag), waiting));
}

} // namespace tern::migrate
