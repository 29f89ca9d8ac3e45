// The migration stream (docs/migration-stream.md): what `tern migrate`'s
// source and `tern serve`'s target say to each other inside the
// authenticated channel. Each direction starts with a 16-byte header and
// is then a sequence of messages framed as snapshot sections
// (docs/snapshot-format.md §3); memory pages travel as the snapshot's MEMD
// and MEMP sections, and the final state is a snapshot stream of its own.
//
//   source                                 target
//   header HOST MODL WASM MHLO  ------->   checks, compiles
//                               <-------   header (MWAI...) MACC | MREF
//   per round: (MEMD MEMP*)* MRND ----->   pages into the new instance
//                               <-------   MRCV (round received)
//   MFIN + snapshot (dirty pages) ----->   rebuilds the program
//                               <-------   MRDY | MFAL
//   MCMT                        ------->
//                               <-------   MRUN, and the program runs there
#pragma once

#include "snapshot/format.h"
#include "snapshot/payload.h"
#include "util/byte_stream.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace tern::migrate {

inline constexpr std::array<uint8_t, 8> kStreamMagic = {0x89, 'T', 'E', 'R', 'N', 'M', 'I', 'G'};
inline constexpr uint32_t kStreamVersion = 1;

// Source to target (besides the snapshot's HOST, MODL, WASM, MEMD, MEMP).
inline constexpr snapshot::Tag kHelloTag = snapshot::make_tag("MHLO");
inline constexpr snapshot::Tag kRoundTag = snapshot::make_tag("MRND");
inline constexpr snapshot::Tag kFinalTag = snapshot::make_tag("MFIN");
inline constexpr snapshot::Tag kCommitTag = snapshot::make_tag("MCMT");
inline constexpr snapshot::Tag kAbortTag = snapshot::make_tag("MABT");
// Target to source.
inline constexpr snapshot::Tag kWaitTag = snapshot::make_tag("MWAI");
inline constexpr snapshot::Tag kAcceptTag = snapshot::make_tag("MACC");
inline constexpr snapshot::Tag kReceivedTag = snapshot::make_tag("MRCV");
inline constexpr snapshot::Tag kRefuseTag = snapshot::make_tag("MREF");
inline constexpr snapshot::Tag kReadyTag = snapshot::make_tag("MRDY");
inline constexpr snapshot::Tag kFailTag = snapshot::make_tag("MFAL");
inline constexpr snapshot::Tag kRunningTag = snapshot::make_tag("MRUN");

// MHLO: what the target needs to decide before any memory is sent.
struct Hello {
  std::string mode;                    // engine asked for; "" = the target's default
  uint32_t timeout_ms = 10'000;        // the source's --timeout: the target uses it too
  std::vector<std::string> guest_dirs; // the program's preopened directories (guest names)
};
std::vector<uint8_t> encode_hello(const Hello& hello);
Hello decode_hello(std::span<const uint8_t> payload, const std::string& what);

// MRND: the end of a pre-copy round; MRCV: the target has applied it
// (the same payload).
struct RoundEnd {
  uint32_t round = 0;
  uint64_t pages_sent = 0; // in this round
};
std::vector<uint8_t> encode_round_end(const RoundEnd& r);
RoundEnd decode_round_end(std::span<const uint8_t> payload, const std::string& what);

// Payloads that are one string (MREF, MFAL, MABT: the reason) or empty.
std::vector<uint8_t> encode_text(std::string_view text);
std::string decode_text(std::span<const uint8_t> payload, const std::string& what);

// One direction of the stream on a byte sink: the header, then messages.
class MessageWriter {
public:
  explicit MessageWriter(util::ByteSink& sink) : sink_(sink) {}
  void header();
  void send(const snapshot::Tag& tag, std::span<const uint8_t> payload = {}, bool optional = false);
  void flush() { sink_.flush(); }
  util::ByteSink& sink() { return sink_; }

private:
  util::ByteSink& sink_;
};

// The other direction: checks the header, reads messages. `peer` names the
// other end in errors.
class MessageReader {
public:
  MessageReader(util::ByteSource& source, std::string peer)
      : source_(source), peer_(std::move(peer)) {}
  // Throws tern::Error unless the stream starts with a version-1 header.
  void header();
  // The next message; throws tern::Error when the stream ends first.
  const snapshot::Section& next();
  // Throws tern::Error naming the message unless it is one of `tags`.
  const snapshot::Section& expect(std::initializer_list<snapshot::Tag> tags, const char* waiting);
  // Accounts for bytes read from the source by someone else (a snapshot
  // read in place).
  void skip_counted(uint64_t bytes) { offset_ += bytes; }
  uint64_t offset() const { return offset_; }
  util::ByteSource& source() { return source_; }

private:
  util::ByteSource& source_;
  std::string peer_;
  snapshot::Section section_;
  uint64_t offset_ = 0;
};

// "MHLO" for messages.
std::string tag_text(const snapshot::Tag& tag);

} // namespace tern::migrate
