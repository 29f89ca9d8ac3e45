// Helpers for the snapshot tests: a sample snapshot that uses every section
// and value type, and a byte-level writer written from
// docs/snapshot-format.md (not from tern's encoder) to craft inputs.
#pragma once

#include "snapshot/format.h"
#include "snapshot/model.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>
#include <xxhash.h>

namespace tern::test {

inline constexpr uint64_t kWasmPage = 65536;

// Memory contents owned by a vector.
inline snapshot::MemoryImage owned_memory(uint64_t pages, std::optional<uint64_t> max = {}) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(pages * kWasmPage, 0);
  snapshot::MemoryImage m;
  m.pages = pages;
  m.max_pages = max;
  m.contents = {*bytes, bytes};
  return m;
}
inline uint8_t* mutable_bytes(snapshot::MemoryImage& m) {
  return const_cast<uint8_t*>(m.contents.data.data());
}

inline snapshot::Snapshot sample_snapshot() {
  using runtime::FrameKind;
  using runtime::ViewValue;
  using wasm::ValType;
  snapshot::Snapshot s;
  s.host = {"9.8.7", "testarch", true, "interp", 1234567890123456789ull};
  static const std::vector<uint8_t> module = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
  s.module.binary = {module, nullptr};
  s.module.embed_binary = true;

  s.memories.push_back(owned_memory(3, 10));
  uint8_t* m0 = mutable_bytes(s.memories[0]);
  std::memcpy(m0 + 5, "hello", 5);          // page 0
  m0[2 * kWasmPage + kWasmPage - 1] = 0xAB; // last byte of page 2
  s.memories.push_back(owned_memory(0));    // empty memory
  s.memories.back().shared = true;
  s.memories.back().max_pages = 1;

  s.globals = {{false, {ValType::I32, 0xFFFFFFFFu}}, {true, {ValType::I64, 0x8000000000000001ull}},
               {true, {ValType::F32, 0x7FC00001u}},  {false, {ValType::F64, 0xFFF0000000000000ull}},
               {true, {ValType::FuncRef, 0}},        {true, {ValType::FuncRef, 6}},
               {true, {ValType::ExternRef, 0}}};
  s.tables.push_back({ValType::FuncRef, 7, {0, 1, 2, 0xFFFFFFFFu}});
  s.tables.push_back({ValType::ExternRef, std::nullopt, {0, 0}});
  s.segments.elem_dropped = {true, false, true};
  s.segments.data_dropped = {false, true};

  runtime::ViewThread main;
  main.stable_points = 0x123456789Aull;
  main.frames.push_back({3,
                         0x40,
                         FrameKind::CallSite,
                         {{ValType::I32, 7}, {ValType::F64, 0x400921FB54442D18ull}},
                         {{ValType::I64, 9}}});
  main.frames.push_back({4, 0x58, FrameKind::LoopHeader, {{ValType::FuncRef, 2}}, {}});
  runtime::ViewThread other;
  other.frames.push_back(
      {5, 0x77, FrameKind::HostCall, {}, {{ValType::I32, 1}, {ValType::I32, 2}}});
  runtime::ViewThread third;
  third.frames.push_back({1, 0x10, FrameKind::FunctionEntry, {{ValType::ExternRef, 0}}, {}});
  s.threads = {{0, main}, {7, other}, {8, third}};

  s.extensions.push_back({snapshot::make_tag("WASI"), false, {1, 2, 3}});
  s.extensions.push_back({snapshot::make_tag("note"), true, {}});
  return s;
}

inline std::vector<uint8_t> to_bytes(const snapshot::Snapshot& s,
                                     const snapshot::WriteOptions& options = {}) {
  util::VectorSink sink;
  snapshot::write_snapshot(s, sink, options);
  return std::move(sink.bytes());
}

inline snapshot::Snapshot from_bytes(std::span<const uint8_t> bytes,
                                     const snapshot::ReadOptions& options = {}) {
  util::SpanSource source(bytes);
  return snapshot::read_snapshot(source, options);
}

// Little-endian byte building, straight from the specification.
struct SpecBytes {
  std::vector<uint8_t> b;
  SpecBytes& u8(uint8_t v) {
    b.push_back(v);
    return *this;
  }
  SpecBytes& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  SpecBytes& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  SpecBytes& raw(std::span<const uint8_t> v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
  SpecBytes& str(const std::string& s) {
    u32(uint32_t(s.size()));
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
};

// A whole stream: header, the given sections, TAIL.
class SpecStream {
public:
  explicit SpecStream(uint32_t version = 1, uint32_t header_flags = 0) {
    const uint8_t magic[8] = {0x89, 'T', 'E', 'R', 'N', 'S', 'N', 'P'};
    out_.raw(magic).u32(version).u32(header_flags);
  }
  // The offset of the next section.
  uint64_t size() const { return out_.b.size(); }
  SpecStream& section(const char (&tag)[5], const std::vector<uint8_t>& payload, uint32_t flags = 0,
                      std::optional<uint32_t> claimed_length = {}) {
    const size_t start = out_.b.size();
    out_.raw({reinterpret_cast<const uint8_t*>(tag), 4});
    out_.u32(flags).u32(claimed_length.value_or(uint32_t(payload.size())));
    out_.u32(uint32_t(XXH64(out_.b.data() + start, 12, 0)));
    out_.raw(payload);
    out_.u64(XXH64(payload.data(), payload.size(), 0));
    ++sections_;
    return *this;
  }
  // The minimal required sections of an empty instance.
  SpecStream& minimal_instance() {
    std::vector<uint8_t> modl(32, 0x11);
    SpecBytes m;
    m.raw(modl).u64(0);
    section("MODL", m.b);
    section("GLOB", SpecBytes().u32(0).b);
    section("SEGS", SpecBytes().u32(0).u32(0).b);
    return *this;
  }
  std::vector<uint8_t> finish() {
    SpecBytes tail;
    tail.u64(out_.b.size()).u32(sections_).u64(XXH64(out_.b.data(), out_.b.size(), 0));
    section("TAIL", tail.b);
    return out_.b;
  }

private:
  SpecBytes out_;
  uint32_t sections_ = 0;
};

inline uint64_t get_le(const std::vector<uint8_t>& b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[at + i];
  return v;
}
inline void put_le(std::vector<uint8_t>& b, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + i] = uint8_t(v >> (8 * i));
}

// A section of a stream, found by walking the frames (docs/snapshot-format.md §3).
struct SpecSection {
  std::string tag;
  size_t offset = 0; // of its header
  uint32_t length = 0;
  size_t payload() const { return offset + 16; }
};
inline std::vector<SpecSection> spec_sections(const std::vector<uint8_t>& b) {
  std::vector<SpecSection> out;
  for (size_t at = 16; at + 16 <= b.size();) {
    SpecSection s{std::string(b.begin() + at, b.begin() + at + 4), at,
                  uint32_t(get_le(b, at + 8, 4))};
    out.push_back(s);
    at += 16 + s.length + 8;
  }
  return out;
}
inline SpecSection find_section(const std::vector<uint8_t>& b, const std::string& tag) {
  for (const SpecSection& s : spec_sections(b))
    if (s.tag == tag) return s;
  return {};
}

// After a change to section `s`'s payload (same length): its payload
// check, then the TAIL's stream check and payload check, as a writer
// would compute them.
inline void reseal(std::vector<uint8_t>& b, const SpecSection& s) {
  put_le(b, s.payload() + s.length, XXH64(b.data() + s.payload(), s.length, 0), 8);
  const size_t tail = b.size() - 44;
  put_le(b, tail + 16 + 12, XXH64(b.data(), tail, 0), 8);
  put_le(b, tail + 16 + 20, XXH64(b.data() + tail + 16, 20, 0), 8);
}
// After a change to the header or the TAIL's counts: the TAIL's checks.
inline void reseal_tail(std::vector<uint8_t>& b) {
  const size_t tail = b.size() - 44;
  put_le(b, tail + 16 + 12, XXH64(b.data(), tail, 0), 8);
  put_le(b, tail + 16 + 20, XXH64(b.data() + tail + 16, 20, 0), 8);
}

} // namespace tern::test
