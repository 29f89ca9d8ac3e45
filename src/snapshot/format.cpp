#include "snapshot/format.h"

#include "snapshot/chunk_index.h"
#include "snapshot/pages.h"
#include "snapshot/payload.h"
#include "tern/error.h"
#include "util/file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

namespace tern::snapshot {
namespace {

// Off only in the fuzz targets (accept_wrong_checksums_for_fuzzing).
bool verify_checks = true;

constexpr uint32_t kOptionalFlag = 1;
constexpr size_t kFileHeaderBytes = 16;    // magic, version, flags
constexpr size_t kSectionHeaderBytes = 16; // tag, flags, length, header check
constexpr uint64_t kMaxPages = wasm::kMaxPages;

uint32_t header_check(const uint8_t* first12) {
  return static_cast<uint32_t>(XXH64(first12, 12, 0));
}

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

std::string tag_name(const Tag& tag) {
  std::string out;
  for (char c : tag) {
    if (c >= 0x20 && c < 0x7F)
      out.push_back(c);
    else
      out += fmt::format("\\x{:02x}", static_cast<uint8_t>(c));
  }
  return out;
}

bool printable_tag(const Tag& tag) {
  return std::all_of(tag.begin(), tag.end(), [](char c) { return c > 0x20 && c < 0x7F; });
}

// ---------------------------------------------------------------- writing

// A section's frame header: tag, flags, length, header check.
void frame_header(const Tag& tag, bool optional, size_t length, uint8_t h[kSectionHeaderBytes]) {
  if (length > 0xFFFFFFFFu)
    throw Error(fmt::format("snapshot section {} is too large ({} bytes)", tag_name(tag), length));
  std::memcpy(h, tag.data(), 4);
  put_u32(h + 4, optional ? kOptionalFlag : 0);
  put_u32(h + 8, static_cast<uint32_t>(length));
  put_u32(h + 12, header_check(h));
}

class StreamWriter {
public:
  StreamWriter(util::ByteSink& sink, const std::function<void(uint64_t)>& progress)
      : sink_(sink), progress_(progress) {
    XXH64_reset(&hash_, 0);
  }

  void file_header(uint32_t version, uint32_t flags) {
    uint8_t h[kFileHeaderBytes];
    std::memcpy(h, kMagic.data(), kMagic.size());
    put_u32(h + 8, version);
    put_u32(h + 12, flags);
    raw(h);
  }

  // Bytes written so far: the offset of the next section.
  uint64_t offset() const { return bytes_; }

  void section(const Tag& tag, bool optional, std::span<const uint8_t> payload) {
    uint8_t h[kSectionHeaderBytes];
    frame_header(tag, optional, payload.size(), h);
    raw(h);
    raw(payload);
    uint8_t sum[8];
    put_u64(sum, XXH64(payload.data(), payload.size(), 0));
    raw(sum);
    ++sections_;
    if (progress_) progress_(bytes_);
  }

  WrittenSnapshot tail() {
    PayloadWriter p;
    p.u64(bytes_);
    p.u32(sections_);
    p.u64(XXH64_digest(&hash_));
    section(kTailTag, false, p.out());
    sink_.flush();
    return {bytes_, sha256_.digest()};
  }

private:
  void raw(std::span<const uint8_t> b) {
    sink_.write(b);
    XXH64_update(&hash_, b.data(), b.size());
    sha256_.update(b);
    bytes_ += b.size();
  }

  util::ByteSink& sink_;
  const std::function<void(uint64_t)>& progress_;
  XXH64_state_t hash_;
  util::Sha256 sha256_;
  uint64_t bytes_ = 0;
  uint32_t sections_ = 0;
};

std::vector<uint8_t> encode_parent(const ParentRef& parent) {
  if (!is_plain_file_name(parent.name))
    throw Error(
        fmt::format("the parent snapshot's name '{}' is not a plain file name", parent.name));
  PayloadWriter p;
  p.string(parent.name);
  p.u64(parent.size);
  p.bytes(parent.sha256);
  return std::move(p.out());
}

// GLOB, TABL and SEGS payloads; SPWN repeats them for each spawned thread.
void put_globals(PayloadWriter& p, const std::vector<GlobalImage>& globals) {
  p.u32(static_cast<uint32_t>(globals.size()));
  for (const GlobalImage& g : globals) {
    p.boolean(g.mut);
    p.value(g.value);
  }
}

void put_table(PayloadWriter& p, uint32_t index, const TableImage& t) {
  if (!wasm::is_ref(t.elem_type)) throw Error(fmt::format("table {}: not a reference type", index));
  if (t.elements.size() > 0xFFFFFFFFu) throw Error(fmt::format("table {} is too large", index));
  p.u32(index);
  p.u8(static_cast<uint8_t>(t.elem_type));
  p.boolean(t.max.has_value());
  p.u32(t.max.value_or(0));
  p.u32(static_cast<uint32_t>(t.elements.size()));
  for (uint32_t e : t.elements) {
    if (t.elem_type == wasm::ValType::ExternRef && e != 0)
      throw Error("a host (extern) reference cannot be saved");
    p.u32(e);
  }
}

void put_segments(PayloadWriter& p, const SegmentState& s) {
  p.u32(static_cast<uint32_t>(s.elem_dropped.size()));
  for (bool d : s.elem_dropped) p.boolean(d);
  p.u32(static_cast<uint32_t>(s.data_dropped.size()));
  for (bool d : s.data_dropped) p.boolean(d);
}

template <typename... A>
std::vector<uint8_t> encode(void (*put)(PayloadWriter&, A...), A... args) {
  PayloadWriter p;
  put(p, args...);
  return std::move(p.out());
}

// SPWN: the next tid, then each spawned thread's tid, start argument and
// its own instance's globals, tables and segments.
std::vector<uint8_t> encode_spawned(const SpawnedThreads& spawned) {
  PayloadWriter p;
  p.u32(spawned.next_tid);
  p.u32(static_cast<uint32_t>(spawned.threads.size()));
  for (const SpawnedThreadImage& t : spawned.threads) {
    p.u32(t.tid);
    p.u32(t.start_arg);
    put_globals(p, t.globals);
    p.u32(static_cast<uint32_t>(t.tables.size()));
    for (size_t i = 0; i < t.tables.size(); ++i)
      put_table(p, static_cast<uint32_t>(i), t.tables[i]);
    put_segments(p, t.segments);
  }
  return std::move(p.out());
}

std::vector<uint8_t> encode_thread(const ThreadImage& t) {
  PayloadWriter p;
  p.u32(t.id);
  p.u64(t.view.stable_points);
  p.u32(static_cast<uint32_t>(t.view.frames.size()));
  for (const runtime::ViewFrame& f : t.view.frames) {
    p.u32(f.func_index);
    p.u32(f.wasm_offset);
    p.u8(static_cast<uint8_t>(f.kind));
    p.u32(static_cast<uint32_t>(f.locals.size()));
    for (const auto& v : f.locals) p.value(v);
    p.u32(static_cast<uint32_t>(f.stack.size()));
    for (const auto& v : f.stack) p.value(v);
  }
  return std::move(p.out());
}

// WAIT: every shared memory's queues and notified waiters.
std::vector<uint8_t> encode_wait_queues(const std::vector<WaitQueueImage>& memories) {
  PayloadWriter p;
  p.u32(static_cast<uint32_t>(memories.size()));
  for (const WaitQueueImage& m : memories) {
    p.u32(m.memory);
    p.u32(static_cast<uint32_t>(m.state.queues.size()));
    for (const auto& q : m.state.queues) {
      p.u64(q.addr);
      p.u32(static_cast<uint32_t>(q.waiters.size()));
      for (const auto& w : q.waiters) {
        p.u32(static_cast<uint32_t>(w.thread_id));
        p.boolean(w.remaining_ns.has_value());
        p.u64(static_cast<uint64_t>(w.remaining_ns.value_or(0)));
      }
    }
    p.u32(static_cast<uint32_t>(m.state.woken.size()));
    for (const auto& w : m.state.woken) {
      p.u32(static_cast<uint32_t>(w.thread_id));
      p.u64(w.addr);
    }
  }
  return std::move(p.out());
}

} // namespace

uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void accept_wrong_checksums_for_fuzzing() {
  verify_checks = false;
}

std::vector<uint8_t> encode_host(const HostInfo& h) {
  PayloadWriter p;
  p.string(h.tern_version);
  p.string(h.arch);
  p.boolean(h.big_endian);
  p.string(h.engine);
  p.u64(h.unix_time_ns);
  return std::move(p.out());
}

std::vector<uint8_t> encode_module(const util::Sha256Digest& digest, uint64_t size) {
  PayloadWriter p;
  p.bytes(digest);
  p.u64(size);
  return std::move(p.out());
}

HostInfo decode_host(PayloadReader& r) {
  HostInfo h;
  h.tern_version = r.string();
  h.arch = r.string();
  h.big_endian = r.boolean();
  h.engine = r.string();
  h.unix_time_ns = r.u64();
  r.expect_end();
  return h;
}

uint64_t decode_module(PayloadReader& r, util::Sha256Digest& digest) {
  auto b = r.bytes(digest.size());
  std::copy(b.begin(), b.end(), digest.begin());
  const uint64_t size = r.u64();
  r.expect_end();
  return size;
}

std::vector<uint8_t> encode_memory_header(uint32_t index, const MemoryImage& m) {
  if (m.pages > kMaxPages) throw Error(fmt::format("memory {} has too many pages", index));
  if (m.contents.data.size() != m.pages * kPageSize)
    throw Error(fmt::format("memory {}: contents are not loaded ({} bytes for {} pages)", index,
                            m.contents.data.size(), m.pages));
  PayloadWriter p;
  p.u32(index);
  p.u64(m.pages);
  p.boolean(m.max_pages.has_value());
  p.u64(m.max_pages.value_or(0));
  p.boolean(m.shared);
  return std::move(p.out());
}

MemoryImage decode_memory_header(PayloadReader& r, uint32_t& index) {
  index = r.u32();
  MemoryImage m;
  m.pages = r.u64();
  const bool has_max = r.boolean();
  const uint64_t max = r.u64();
  m.shared = r.boolean();
  r.expect_end();
  if (m.pages > kMaxPages)
    r.fail(fmt::format("{} pages exceed the limit of {}", m.pages, kMaxPages));
  if (has_max) {
    if (max > kMaxPages || max < m.pages)
      r.fail(fmt::format("maximum {} is below the size {} or above {}", max, m.pages, kMaxPages));
    m.max_pages = max;
  } else if (max != 0) {
    r.fail("a maximum is given but marked absent");
  }
  if (m.shared && !has_max) r.fail("a shared memory without a maximum");
  return m;
}

namespace {

// ---------------------------------------------------------------- reading

class StreamReader {
public:
  explicit StreamReader(util::ByteSource& source, uint64_t offset = 0)
      : source_(source), offset_(offset), read_(offset) {
    XXH64_reset(&hash_, 0);
  }

  void file_header() {
    uint8_t h[kFileHeaderBytes];
    size_t got = 0;
    while (got < kFileHeaderBytes) {
      const size_t n = source_.read_some({h + got, kFileHeaderBytes - got});
      if (n == 0) break;
      got += n;
    }
    read_ = got;
    if (got == 0) throw Error("not a tern snapshot: the input is empty");
    if (std::memcmp(h, kMagic.data(), std::min(got, kMagic.size())) != 0)
      throw Error("not a tern snapshot (wrong magic bytes)");
    if (got < kFileHeaderBytes)
      throw Error(
          fmt::format("snapshot is truncated: it ends at byte {}, inside the file header", got));
    version_ = get_u32(h + 8);
    if (version_ != kFormatVersion && version_ != kIncrementalFormatVersion)
      throw Error(fmt::format("unsupported snapshot format version {} (this tern reads versions "
                              "{} and {})",
                              version_, kFormatVersion, kIncrementalFormatVersion));
    flags_ = get_u32(h + 12);
    if (flags_ & ~kIndexedFlag)
      throw Error(fmt::format("snapshot header has unknown flags 0x{:x}", flags_ & ~kIndexedFlag));
    account({h, kFileHeaderBytes});
  }

  // Reads the next section into `s`, checking its header and payload.
  void next(Section& s) {
    if (!next_or_end(s))
      throw Error(
          fmt::format("snapshot is truncated: it ends at byte {}, before the TAIL section", read_));
  }

  // The same, but false when the stream ends cleanly before the section.
  bool next_or_end(Section& s) {
    hash_before_ = XXH64_digest(&hash_);
    offset_before_ = offset_;
    s.offset = offset_;
    uint8_t h[kSectionHeaderBytes];
    size_t got = 0;
    while (got < kSectionHeaderBytes) {
      const size_t n = source_.read_some(std::span(h).subspan(got));
      if (n == 0) break;
      got += n;
      read_ += n;
    }
    if (got == 0) return false;
    if (got < kSectionHeaderBytes)
      throw Error(fmt::format("snapshot is truncated: it ends at byte {}, inside the header of the "
                              "section that starts at byte {}",
                              read_, offset_));
    if (verify_checks && get_u32(h + 12) != header_check(h))
      throw Error(fmt::format("snapshot is corrupt: the section header at byte {} fails its check",
                              offset_));
    std::memcpy(s.tag.data(), h, 4);
    const uint32_t flags = get_u32(h + 4);
    if (flags & ~kOptionalFlag)
      throw Error(fmt::format("{}: unknown section flags 0x{:x}", s.name(), flags));
    s.optional = (flags & kOptionalFlag) != 0;
    account(h);
    s.declared_length = get_u32(h + 8);
    read_payload(s, s.declared_length);
    uint8_t sum[8];
    if (!read_exact(sum)) truncated(s);
    if (verify_checks && get_u64(sum) != XXH64(s.storage.data(), s.length, 0))
      throw Error(fmt::format("snapshot is corrupt: {} fails its checksum", s.name()));
    account(sum);
    ++sections_;
    return true;
  }

  uint32_t version() const { return version_; }
  uint32_t flags() const { return flags_; }
  uint64_t offset() const { return offset_; }
  uint32_t sections() const { return sections_; }
  util::Sha256Digest sha256() { return sha256_.digest(); }
  uint64_t hash_before_section() const { return hash_before_; }
  uint64_t offset_before_section() const { return offset_before_; }
  uint32_t sections_before_section() const { return sections_ - 1; }

private:
  // Grows the buffer only as bytes arrive, so a corrupt length cannot make
  // the reader allocate much more than the input holds.
  void read_payload(Section& s, uint32_t length) {
    s.length = 0;
    while (s.length < length) {
      const size_t step = std::min<size_t>(length - s.length, std::max<size_t>(s.length, 1 << 20));
      if (s.storage.size() < s.length + step) s.storage.resize(s.length + step);
      if (!read_exact({s.storage.data() + s.length, step})) truncated(s);
      s.length += step;
    }
    account(s.payload());
  }

  // Where the stream ends, and the section it cuts.
  [[noreturn]] void truncated(const Section& s) {
    throw Error(fmt::format("snapshot is truncated: it ends at byte {}, inside {} (which should "
                            "end at byte {})",
                            read_, s.name(),
                            s.offset + kSectionHeaderBytes + s.declared_length + 8));
  }

  // Like ByteSource::read_exact, counting what arrives (read_), so that a
  // truncated stream is reported where it ends.
  bool read_exact(std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size()) {
      const size_t n = source_.read_some(out.subspan(done));
      if (n == 0) return false;
      done += n;
      read_ += n;
    }
    return true;
  }

  void account(std::span<const uint8_t> b) {
    XXH64_update(&hash_, b.data(), b.size());
    sha256_.update(b);
    offset_ += b.size();
  }

  util::ByteSource& source_;
  XXH64_state_t hash_;
  util::Sha256 sha256_;
  uint32_t version_ = 0;
  uint32_t flags_ = 0;
  uint64_t offset_ = 0; // after the last complete header or section
  uint64_t read_ = 0;   // bytes taken from the source
  uint32_t sections_ = 0;
  uint64_t hash_before_ = 0;
  uint64_t offset_before_ = 0;
};

// Sections must come in this order (extensions between the wait queues and
// memories); the singletons and each extension tag at most once.
constexpr int kExtensionRank = 10;

int rank(const Tag& tag) {
  static const std::pair<Tag, int> ranks[] = {
      {kHostTag, 0},        {kModuleTag, 1},  {kParentTag, 2},   {kWasmTag, 3},
      {kGlobalsTag, 4},     {kTableTag, 5},   {kSegmentsTag, 6}, {kThreadTag, 7},
      {kWaitQueuesTag, 8},  {kSpawnedTag, 9}, {kMemoryTag, 11},  {kPagesTag, 11},
      {kChunkIndexTag, 12}, {kTailTag, 13}};
  for (const auto& [t, r] : ranks)
    if (t == tag) return r;
  return kExtensionRank;
}

bool is_singleton(const Tag& tag) {
  return tag == kHostTag || tag == kModuleTag || tag == kParentTag || tag == kWasmTag ||
         tag == kGlobalsTag || tag == kSegmentsTag || tag == kWaitQueuesTag || tag == kSpawnedTag ||
         tag == kChunkIndexTag;
}

class SnapshotBuilder {
public:
  SnapshotBuilder(const ReadOptions& options, uint32_t version, uint32_t flags)
      : options_(options), version_(version), flags_(flags) {}

  // Returns true at the TAIL section (or, reading only the identity, at the
  // first section after it).
  bool add(Section& s, const StreamReader& stream) {
    if (options_.identity_only && rank(s.tag) > rank(kWasmTag)) return true;
    check_order(s);
    PayloadReader r(s.payload(), s.name());
    if (s.tag == kHostTag)
      read_host(r);
    else if (s.tag == kModuleTag)
      read_module(r);
    else if (s.tag == kParentTag)
      read_parent(r);
    else if (s.tag == kWasmTag)
      read_wasm(s, r);
    else if (s.tag == kGlobalsTag)
      read_globals(r);
    else if (s.tag == kTableTag)
      read_table(r);
    else if (s.tag == kSegmentsTag)
      read_segments(r);
    else if (s.tag == kThreadTag)
      read_thread(r);
    else if (s.tag == kWaitQueuesTag)
      read_wait_queues(r);
    else if (s.tag == kSpawnedTag)
      read_spawned(r);
    else if (s.tag == kMemoryTag)
      return read_memory(r, stream);
    else if (s.tag == kPagesTag)
      read_pages(s);
    else if (s.tag == kChunkIndexTag)
      read_chunk_index(s, r);
    else if (s.tag == kTailTag)
      return read_tail(r, stream);
    else
      read_extension(s);
    return false;
  }

  Snapshot take() { return std::move(snap_); }

private:
  void check_order(const Section& s) {
    const int r = rank(s.tag);
    if (!seen_.contains(kModuleTag) && s.tag != kHostTag && s.tag != kModuleTag)
      throw Error(fmt::format("snapshot is malformed: {} comes before the MODL section", s.name()));
    if (r < rank_) throw Error(fmt::format("snapshot is malformed: {} is out of order", s.name()));
    // An extension is one owner's whole state: two of them would be two
    // answers to one question (which fds, which files).
    if ((is_singleton(s.tag) || r == kExtensionRank) && seen_.contains(s.tag))
      throw Error(fmt::format("snapshot is malformed: {} is repeated", s.name()));
    if (s.tag == kPagesTag && !decoder_)
      throw Error(fmt::format("snapshot is malformed: {} comes before any MEMD section", s.name()));
    rank_ = r;
    seen_.insert(s.tag);
  }

  void read_host(PayloadReader& r) { snap_.host = decode_host(r); }

  void read_module(PayloadReader& r) {
    util::Sha256Digest d;
    module_size_ = decode_module(r, d);
    snap_.module.sha256 = d;
    if (!options_.inherited_module.data.empty()) { // checked against MODL by the chain
      snap_.module.binary = options_.inherited_module;
      snap_.module.embed_binary = true;
    }
  }

  void read_parent(PayloadReader& r) {
    if (version_ != kIncrementalFormatVersion)
      r.fail(fmt::format("a version {} snapshot cannot have a parent", version_));
    ParentRef p;
    p.name = r.string();
    p.size = r.u64();
    auto digest = r.bytes(p.sha256.size());
    std::copy(digest.begin(), digest.end(), p.sha256.begin());
    r.expect_end();
    if (!is_plain_file_name(p.name))
      r.fail(fmt::format("the parent's name '{}' is not a plain file name", p.name));
    snap_.parent = std::move(p);
  }

  void read_wasm(const Section& s, PayloadReader& r) {
    auto binary = std::make_shared<std::vector<uint8_t>>(s.payload().begin(), s.payload().end());
    if (binary->size() != module_size_ || util::sha256(*binary) != *snap_.module.sha256)
      r.fail("the module binary does not match the module's size and sha-256 in MODL");
    snap_.module.binary = {*binary, binary};
    snap_.module.embed_binary = true;
  }

  void read_globals(PayloadReader& r) {
    snap_.globals = globals_from(r);
    r.expect_end();
  }

  void read_table(PayloadReader& r) {
    snap_.tables.push_back(table_from(r, snap_.tables.size()));
    r.expect_end();
  }

  void read_segments(PayloadReader& r) {
    snap_.segments = segments_from(r);
    r.expect_end();
  }

  // GLOB, TABL and SEGS payloads, also inside SPWN.
  static std::vector<GlobalImage> globals_from(PayloadReader& r) {
    const uint32_t n = r.count(2 + 4, "globals");
    std::vector<GlobalImage> globals;
    globals.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      GlobalImage g;
      g.mut = r.boolean();
      g.value = r.value();
      globals.push_back(g);
    }
    return globals;
  }

  static TableImage table_from(PayloadReader& r, size_t expected_index) {
    const uint32_t index = r.u32();
    if (index != expected_index)
      r.fail(fmt::format("table {} where table {} was expected", index, expected_index));
    TableImage t;
    const uint8_t elem = r.u8();
    t.elem_type = static_cast<wasm::ValType>(elem);
    if (!wasm::is_ref(t.elem_type)) r.fail(fmt::format("unknown element type 0x{:02x}", elem));
    const bool has_max = r.boolean();
    const uint32_t max = r.u32();
    if (has_max)
      t.max = max;
    else if (max != 0)
      r.fail("a maximum is given but marked absent");
    const uint32_t size = r.count(4, "elements");
    if (has_max && size > max) r.fail(fmt::format("size {} exceeds the maximum {}", size, max));
    t.elements.reserve(size);
    for (uint32_t i = 0; i < size; ++i) {
      const uint32_t e = r.u32();
      if (t.elem_type == wasm::ValType::ExternRef && e != 0)
        r.fail(fmt::format("element {} is a non-null extern reference", i));
      t.elements.push_back(e);
    }
    return t;
  }

  static SegmentState segments_from(PayloadReader& r) {
    SegmentState segments;
    for (auto* flags : {&segments.elem_dropped, &segments.data_dropped}) {
      const uint32_t n = r.count(1, "segment flags");
      flags->reserve(n);
      for (uint32_t i = 0; i < n; ++i) flags->push_back(r.boolean());
    }
    return segments;
  }

  // SPWN (docs/snapshot-format.md §6.14): tids increase, are below next_tid
  // and name THRD threads; every THRD thread but 0 is listed.
  void read_spawned(PayloadReader& r) {
    SpawnedThreads spawned;
    spawned.next_tid = r.u32();
    if (spawned.next_tid == 0 || spawned.next_tid > kMaxSpawnedTid + 1)
      r.fail(
          fmt::format("next thread id {} is not in 1..{}", spawned.next_tid, kMaxSpawnedTid + 1));
    const uint32_t n = r.count(4 + 4 + 4 + 4 + 8, "spawned threads");
    std::set<uint32_t> listed;
    for (uint32_t i = 0; i < n; ++i) {
      SpawnedThreadImage t;
      t.tid = r.u32();
      if (t.tid == 0 || t.tid >= spawned.next_tid)
        r.fail(fmt::format("thread id {} is not in 1..{}", t.tid, spawned.next_tid - 1));
      if (i > 0 && t.tid <= spawned.threads.back().tid)
        r.fail(
            fmt::format("thread {} does not follow thread {}", t.tid, spawned.threads.back().tid));
      bool has_frames = false;
      for (const ThreadImage& thread : snap_.threads) has_frames = has_frames || thread.id == t.tid;
      if (!has_frames) r.fail(fmt::format("thread {} has no THRD section", t.tid));
      t.start_arg = r.u32();
      t.globals = globals_from(r);
      const uint32_t tables = r.count(4 + 1 + 1 + 4 + 4, "tables");
      for (uint32_t k = 0; k < tables; ++k) t.tables.push_back(table_from(r, k));
      t.segments = segments_from(r);
      listed.insert(t.tid);
      spawned.threads.push_back(std::move(t));
    }
    r.expect_end();
    for (const ThreadImage& thread : snap_.threads)
      if (thread.id != 0 && !listed.contains(thread.id))
        r.fail(fmt::format("thread {} has frames but is not a spawned thread here", thread.id));
    snap_.spawned = std::move(spawned);
  }

  void read_thread(PayloadReader& r) {
    ThreadImage t;
    t.id = r.u32();
    for (const ThreadImage& other : snap_.threads)
      if (other.id == t.id) r.fail(fmt::format("thread id {} is repeated", t.id));
    t.view.stable_points = r.u64();
    const uint32_t n = r.count(17, "frames");
    if (n == 0) r.fail("a thread without frames");
    t.view.frames.reserve(n);
    for (uint32_t i = 0; i < n; ++i) t.view.frames.push_back(read_frame(r, i, i + 1 == n));
    r.expect_end();
    snap_.threads.push_back(std::move(t));
  }

  // WAIT (docs/snapshot-format.md §6.8): every thread it names is a THRD
  // thread, named once; memories and addresses increase.
  void read_wait_queues(PayloadReader& r) {
    std::set<uint32_t> named;
    auto thread = [&] {
      const uint32_t id = r.u32();
      bool known = false;
      for (const ThreadImage& t : snap_.threads) known = known || t.id == id;
      if (!known) r.fail(fmt::format("thread {} waits but has no THRD section", id));
      if (!named.insert(id).second) r.fail(fmt::format("thread {} waits twice", id));
      return id;
    };
    const uint32_t n = r.count(12, "memories");
    for (uint32_t i = 0; i < n; ++i) {
      WaitQueueImage m;
      m.memory = r.u32();
      if (i > 0 && m.memory <= snap_.wait_queues.back().memory)
        r.fail(fmt::format("memory {} does not follow memory {}", m.memory,
                           snap_.wait_queues.back().memory));
      const uint32_t queues = r.count(12, "queues");
      for (uint32_t q = 0; q < queues; ++q) {
        runtime::WaitQueues::QueueRecord record;
        record.addr = r.u64();
        if (q > 0 && record.addr <= m.state.queues.back().addr)
          r.fail(fmt::format("memory {}: address {} does not follow address {}", m.memory,
                             record.addr, m.state.queues.back().addr));
        const uint32_t waiters = r.count(13, "waiters");
        if (waiters == 0) r.fail(fmt::format("memory {}: an empty queue", m.memory));
        for (uint32_t k = 0; k < waiters; ++k) {
          runtime::WaitQueues::WaiterRecord w;
          w.thread_id = thread();
          const bool has_timeout = r.boolean();
          const uint64_t remaining = r.u64();
          if (remaining > uint64_t(INT64_MAX) || (!has_timeout && remaining != 0))
            r.fail(fmt::format("thread {}: invalid time left {}", w.thread_id, remaining));
          if (has_timeout) w.remaining_ns = int64_t(remaining);
          record.waiters.push_back(w);
        }
        m.state.queues.push_back(std::move(record));
      }
      const uint32_t woken = r.count(12, "notified waiters");
      for (uint32_t k = 0; k < woken; ++k) {
        runtime::WaitQueues::WokenRecord w;
        w.thread_id = thread();
        w.addr = r.u64();
        m.state.woken.push_back(w);
      }
      if (m.state.empty()) r.fail(fmt::format("memory {} has no waiters", m.memory));
      snap_.wait_queues.push_back(std::move(m));
    }
    r.expect_end();
  }

  static runtime::ViewFrame read_frame(PayloadReader& r, uint32_t i, bool innermost) {
    runtime::ViewFrame f;
    f.func_index = r.u32();
    f.wasm_offset = r.u32();
    const uint8_t kind = r.u8();
    if (kind > static_cast<uint8_t>(runtime::FrameKind::AtomicWait))
      r.fail(fmt::format("frame {}: unknown frame kind {}", i, kind));
    f.kind = static_cast<runtime::FrameKind>(kind);
    if (innermost == (f.kind == runtime::FrameKind::CallSite))
      r.fail(fmt::format("frame {}: {}", i,
                         innermost ? "the innermost frame cannot be a call site"
                                   : "every frame but the innermost must be a call site"));
    for (auto* values : {&f.locals, &f.stack}) {
      const uint32_t n = r.count(5, "values");
      values->reserve(n);
      for (uint32_t k = 0; k < n; ++k) values->push_back(r.value());
    }
    return f;
  }

  // Returns true when the memory's pages are deferred: the reader stops.
  bool read_memory(PayloadReader& r, const StreamReader& stream) {
    finish_memory();
    uint32_t index = 0;
    MemoryImage m = decode_memory_header(r, index);
    if (index != snap_.memories.size())
      r.fail(fmt::format("memory {} where memory {} was expected", index, snap_.memories.size()));
    std::span<uint8_t> target;
    if (options_.keep_memory && options_.memory_target) {
      target = options_.memory_target(index, m, snap_);
      if (target.size() != m.pages * kPageSize)
        r.fail(fmt::format("the restore target of memory {} holds {} bytes, not {}", index,
                           target.size(), m.pages * kPageSize));
      m.contents = {target, nullptr};
    } else if (options_.keep_memory) {
      auto buffer = std::make_shared<PageBuffer>(m.pages * kPageSize);
      target = buffer->bytes();
      m.contents = {target, buffer};
      m.private_mapping = true; // PageBuffer: private anonymous memory
    }
    std::vector<bool>* filled = nullptr;
    if (options_.filled && index < options_.filled->size()) filled = &(*options_.filled)[index];
    decoder_ = std::make_unique<ChunkDecoder>(index, m.pages, target, filled);
    snap_.memories.push_back(std::move(m));
    const uint64_t memd_offset = stream.offset_before_section();
    indexed_.memories.push_back({memd_offset, {}});
    if (!options_.keep_memory || !options_.defer_pages ||
        !options_.defer_pages(index, snap_.memories.back()))
      return false;
    check_complete(r);
    decoder_.reset();
    const bool announced = (flags_ & kIndexedFlag) != 0;
    snap_.deferred_pages =
        DeferredPages{index, stream.offset(), stream.sections(), memd_offset, announced, nullptr};
    snap_.chunk_index = announced;
    return true;
  }

  void read_pages(const Section& s) {
    decoder_->decode(s.payload(), s.name());
    if (!(flags_ & kIndexedFlag)) return;
    // What the chunk index must say of it (the decoder checked the header).
    PayloadReader r(s.payload(), s.name());
    const ChunkHeader h =
        read_chunk_header(r, static_cast<uint32_t>(snap_.memories.size() - 1), wasm::kMaxPages, 0);
    indexed_.memories.back().chunks.push_back({s.offset, static_cast<uint32_t>(s.length), h});
  }

  // MIDX (docs/snapshot-format.md §6.15): announced by the header, and
  // exactly the memory sections this reader has read.
  void read_chunk_index(const Section& s, PayloadReader& r) {
    finish_memory();
    if (!(flags_ & kIndexedFlag))
      r.fail("a chunk index in a snapshot whose header does not announce one");
    const ChunkIndex index = decode_chunk_index(r, s.offset);
    if (index.memories.size() != indexed_.memories.size())
      r.fail(fmt::format("it indexes {} memories, the snapshot has {}", index.memories.size(),
                         indexed_.memories.size()));
    for (size_t m = 0; m < index.memories.size(); ++m) {
      const IndexedMemory& said = index.memories[m];
      const IndexedMemory& is = indexed_.memories[m];
      if (said.memd_offset != is.memd_offset)
        r.fail(fmt::format("it puts memory {}'s MEMD section at byte {}, it is at byte {}", m,
                           said.memd_offset, is.memd_offset));
      for (size_t c = 0; c < said.chunks.size() || c < is.chunks.size(); ++c) {
        if (c < said.chunks.size() && c < is.chunks.size() && said.chunks[c] == is.chunks[c])
          continue;
        r.fail(fmt::format("it disagrees with the memory sections: memory {}, chunk {}: it says "
                           "{}; the snapshot has {}",
                           m, c, c < said.chunks.size() ? describe_chunk(said.chunks[c]) : "none",
                           c < is.chunks.size() ? describe_chunk(is.chunks[c]) : "none"));
      }
    }
    snap_.chunk_index = true;
  }

  void finish_memory() {
    if (!decoder_) return;
    snap_.memories.back().nonzero_pages = decoder_->nonzero_pages();
    snap_.memories.back().stored_bytes = decoder_->stored_bytes();
    decoder_.reset();
  }

  void read_extension(const Section& s) {
    if (!printable_tag(s.tag))
      throw Error(fmt::format("snapshot is malformed: {} has an invalid tag", s.name()));
    snap_.extensions.push_back({s.tag, s.optional, {s.payload().begin(), s.payload().end()}});
  }

  bool read_tail(PayloadReader& r, const StreamReader& stream) {
    const uint64_t bytes = r.u64();
    const uint32_t sections = r.u32();
    const uint64_t hash = r.u64();
    r.expect_end();
    if (verify_checks &&
        (bytes != stream.offset_before_section() || sections != stream.sections_before_section() ||
         hash != stream.hash_before_section()))
      r.fail(fmt::format("the stream does not match its trailer ({} bytes in {} sections read, {} "
                         "bytes in {} sections written, or a different checksum)",
                         stream.offset_before_section(), stream.sections_before_section(), bytes,
                         sections));
    check_complete(r);
    finish_memory();
    if ((flags_ & kIndexedFlag) && !seen_.contains(kChunkIndexTag))
      r.fail(
          "the header announces a chunk index (MIDX section) before the TAIL, but there is none");
    return true;
  }

  // The sections every snapshot has are there.
  void check_complete(PayloadReader& r) {
    for (const Tag& required : {kGlobalsTag, kSegmentsTag})
      if (!seen_.contains(required))
        r.fail(fmt::format("the snapshot has no {} section", tag_name(required)));
    if (version_ == kIncrementalFormatVersion && !snap_.parent)
      r.fail("a version 2 (incremental) snapshot without a PRNT section");
  }

  ReadOptions options_;
  uint32_t version_;
  uint32_t flags_;
  Snapshot snap_;
  std::set<Tag> seen_;
  int rank_ = 0;
  uint64_t module_size_ = 0;
  std::unique_ptr<ChunkDecoder> decoder_;
  ChunkIndex indexed_; // the memory sections read, for the MIDX
};

} // namespace

std::string Section::name() const {
  return fmt::format("section {} at byte {}", tag_name(tag), offset);
}

void write_section(util::ByteSink& sink, const Tag& tag, bool optional,
                   std::span<const uint8_t> payload) {
  uint8_t h[kSectionHeaderBytes];
  frame_header(tag, optional, payload.size(), h);
  sink.write(h);
  sink.write(payload);
  uint8_t sum[8];
  put_u64(sum, XXH64(payload.data(), payload.size(), 0));
  sink.write(sum);
}

bool read_section(util::ByteSource& source, uint64_t offset, Section& out) {
  return StreamReader(source, offset).next_or_end(out);
}

namespace {

// Reads a file from an offset with pread: several threads share its fd.
class PreadSource : public util::ByteSource {
public:
  PreadSource(int fd, uint64_t offset) : fd_(fd), offset_(offset) {}
  size_t read_some(std::span<uint8_t> out) override {
    for (;;) {
      const ssize_t n = ::pread(fd_, out.data(), out.size(), static_cast<off_t>(offset_));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error(fmt::format("cannot read: {}", std::strerror(errno)));
      offset_ += static_cast<uint64_t>(n);
      return static_cast<size_t>(n);
    }
  }

private:
  int fd_;
  uint64_t offset_;
};

} // namespace

SectionFrame read_frame_at(int fd, uint64_t offset, uint64_t file_size,
                           std::span<uint8_t> payload_start) {
  std::vector<uint8_t> buffer(kSectionHeaderBytes + payload_start.size());
  const uint8_t* h = buffer.data();
  PreadSource source(fd, offset);
  size_t got = 0;
  while (got < buffer.size()) {
    const size_t n = source.read_some(std::span(buffer).subspan(got));
    if (n == 0) break;
    got += n;
  }
  if (got < kSectionHeaderBytes)
    throw Error(fmt::format("snapshot is truncated: it ends at byte {}, inside the header of the "
                            "section that starts at byte {}",
                            offset + got, offset));
  if (got > kSectionHeaderBytes)
    std::memcpy(payload_start.data(), h + kSectionHeaderBytes, got - kSectionHeaderBytes);
  if (verify_checks && get_u32(h + 12) != header_check(h))
    throw Error(
        fmt::format("snapshot is corrupt: the section header at byte {} fails its check", offset));
  SectionFrame f;
  std::memcpy(f.tag.data(), h, 4);
  f.offset = offset;
  f.length = get_u32(h + 8);
  if (const uint32_t flags = get_u32(h + 4); flags & ~kOptionalFlag)
    throw Error(fmt::format("section {} at byte {}: unknown section flags 0x{:x}", tag_name(f.tag),
                            offset, flags));
  if (offset + section_bytes(f.length) > file_size)
    throw Error(fmt::format("snapshot is truncated: it ends at byte {}, inside section {} at byte "
                            "{} (which should end at byte {})",
                            file_size, tag_name(f.tag), offset, offset + section_bytes(f.length)));
  return f;
}

void read_section_at(int fd, const SectionFrame& frame, Section& out) {
  PreadSource source(fd, frame.offset);
  if (!read_section(source, frame.offset, out) || out.tag != frame.tag ||
      out.declared_length != frame.length)
    throw Error(fmt::format("section {} at byte {} changed while it was read", tag_name(frame.tag),
                            frame.offset));
}

bool is_core_tag(const Tag& tag) {
  return rank(tag) != kExtensionRank;
}

WrittenSnapshot write_snapshot(const Snapshot& s, util::ByteSink& sink,
                               const WriteOptions& options) {
  std::set<Tag> tags;
  for (const ExtensionSection& e : s.extensions) {
    if (is_core_tag(e.tag) || !printable_tag(e.tag))
      throw Error(fmt::format("invalid extension section tag '{}'", tag_name(e.tag)));
    if (!tags.insert(e.tag).second)
      throw Error(fmt::format("extension section {} is repeated", tag_name(e.tag)));
  }
  const auto& binary = s.module.binary.data;
  if (!s.module.sha256 && binary.empty()) throw Error("the snapshot has no module identity");
  const util::Sha256Digest digest = s.module.sha256 ? *s.module.sha256 : util::sha256(binary);

  // An incremental snapshot carries what changed since its parent, zero
  // pages included: the non-zero pages alone would let the parent's
  // contents show through a page that became zero.
  if (s.parent)
    for (size_t i = 0; i < s.memories.size(); ++i)
      if (i >= options.carried_pages.size() || !options.carried_pages[i])
        throw Error(fmt::format("memory {}: an incremental snapshot needs the pages to carry", i));

  const bool indexed = options.chunk_index.value_or(false);
  StreamWriter w(sink, options.progress);
  w.file_header(s.parent ? kIncrementalFormatVersion : kFormatVersion, indexed ? kIndexedFlag : 0);
  w.section(kHostTag, true, encode_host(s.host));
  w.section(kModuleTag, false, encode_module(digest, binary.size()));
  if (s.parent) w.section(kParentTag, false, encode_parent(*s.parent));
  if (s.module.embed_binary) w.section(kWasmTag, true, binary);
  w.section(kGlobalsTag, false, encode<const std::vector<GlobalImage>&>(put_globals, s.globals));
  for (size_t i = 0; i < s.tables.size(); ++i)
    w.section(
        kTableTag, false,
        encode<uint32_t, const TableImage&>(put_table, static_cast<uint32_t>(i), s.tables[i]));
  w.section(kSegmentsTag, false, encode<const SegmentState&>(put_segments, s.segments));
  for (const ThreadImage& t : s.threads) w.section(kThreadTag, false, encode_thread(t));
  if (!s.wait_queues.empty()) w.section(kWaitQueuesTag, false, encode_wait_queues(s.wait_queues));
  if (s.spawned) w.section(kSpawnedTag, false, encode_spawned(*s.spawned));
  for (const ExtensionSection& e : s.extensions) w.section(e.tag, e.optional, e.payload);
  const ChunkOptions chunk_options{options.compress, options.zstd_level, options.threads};
  ChunkIndex chunk_index; // where each MEMP goes, as it goes
  for (size_t i = 0; i < s.memories.size(); ++i) {
    const auto index = static_cast<uint32_t>(i);
    chunk_index.memories.push_back({w.offset(), {}});
    w.section(kMemoryTag, false, encode_memory_header(index, s.memories[i]));
    const MemoryImage& m = s.memories[i];
    std::vector<IndexedChunk>& chunks = chunk_index.memories.back().chunks;
    auto emit = [&](std::span<const uint8_t> payload) {
      if (indexed) {
        PayloadReader r(payload, "a chunk being written");
        const uint64_t next =
            chunks.empty() ? 0 : chunks.back().header.first + chunks.back().header.count;
        chunks.push_back({w.offset(), static_cast<uint32_t>(payload.size()),
                          read_chunk_header(r, index, m.pages, next)});
      }
      w.section(kPagesTag, false, payload);
    };
    if (i < options.carried_pages.size() && options.carried_pages[i])
      encode_page_chunks(index, m.contents.data, *options.carried_pages[i], chunk_options, emit);
    else
      encode_memory_chunks(index, m.contents.data, m.private_mapping, chunk_options, emit);
  }
  if (indexed) {
    chunk_index.offset = w.offset();
    w.section(kChunkIndexTag, true, encode_chunk_index(chunk_index));
  }
  return w.tail();
}

Snapshot read_snapshot(util::ByteSource& source, const ReadOptions& options) {
  StreamReader stream(source);
  stream.file_header();
  SnapshotBuilder builder(options, stream.version(), stream.flags());
  Section s;
  do stream.next(s);
  while (!builder.add(s, stream));
  Snapshot snap = builder.take();
  snap.stream_bytes = stream.offset();
  snap.stream_sha256 = stream.sha256();
  return snap;
}

WrittenSnapshot write_snapshot_file(const std::string& path, const Snapshot& snapshot,
                                    const WriteOptions& options) {
  WrittenSnapshot written;
  WriteOptions file_options = options;
  if (!file_options.chunk_index) file_options.chunk_index = true;
  util::write_file_atomic(
      path, [&](util::ByteSink& sink) { written = write_snapshot(snapshot, sink, file_options); });
  return written;
}

Snapshot read_snapshot_file(const std::string& path, const ReadOptions& options) {
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw Error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  if (struct stat st; ::fstat(f.fd, &st) == 0 && S_ISDIR(st.st_mode))
    throw Error(fmt::format("cannot read {}: is a directory", path));
  util::FdSource source(f.fd, path);
  try {
    Snapshot s = read_snapshot(source, options);
    uint8_t extra;
    if (!s.deferred_pages && source.read_some({&extra, 1}) != 0)
      throw Error("snapshot is malformed: bytes follow the TAIL section");
    return s;
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", path, e.what()));
  }
}

void check_extensions_understood(const Snapshot& snapshot, std::span<const Tag> known) {
  for (const ExtensionSection& e : snapshot.extensions) {
    if (e.optional || std::find(known.begin(), known.end(), e.tag) != known.end()) continue;
    throw Error(fmt::format("snapshot section {} is required to restore but this tern does not "
                            "understand it",
                            tag_name(e.tag)));
  }
}

} // namespace tern::snapshot
