// libFuzzer target: arbitrary bytes through the snapshot reader. Bad input
// must end in a tern::Error; anything else that escapes (another exception,
// a sanitizer report, a broken invariant) is a bug. What the reader accepts
// must survive a write and a second read unchanged; a WASI section is
// decoded and rendered too. Built and run by
// scripts/fuzz.sh snapshot.
#include "snapshot/format.h"
#include "tern/error.h"
#include "wasi/state.h"
#include "wasi/state_records.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

using namespace tern::snapshot;

[[noreturn]] void invariant_broken() {
  std::abort();
}

// What the reader promises about a snapshot it accepted.
void check_read(const Snapshot& s) {
  if (!s.module.sha256) invariant_broken();
  for (const MemoryImage& m : s.memories) {
    if (m.contents.data.size() != m.pages * 65536 || m.nonzero_pages > m.pages) invariant_broken();
    if (m.max_pages && *m.max_pages < m.pages) invariant_broken();
  }
  for (const ThreadImage& t : s.threads) {
    if (t.view.frames.empty()) invariant_broken();
    for (size_t i = 0; i + 1 < t.view.frames.size(); ++i)
      if (t.view.frames[i].kind != tern::runtime::FrameKind::CallSite) invariant_broken();
  }
}

// A WASI section through its decoder and renderer: what decodes must
// encode to a payload that decodes and encodes to the same bytes again.
void check_wasi_state(const ExtensionSection& e) {
  if (e.tag != tern::wasi::kStateTag) return;
  try {
    tern::wasi::describe_state(e);
  } catch (const tern::Error&) {
    return; // rejected: the snapshot's own round trip still runs
  }
  const auto once = tern::wasi::state::encode(tern::wasi::state::decode(e.payload));
  const auto twice = tern::wasi::state::encode(tern::wasi::state::decode(once));
  if (once != twice) invariant_broken();
}

bool same(const Snapshot& a, const Snapshot& b) {
  if (a.module.sha256 != b.module.sha256 || a.memories.size() != b.memories.size() ||
      a.globals.size() != b.globals.size() || a.tables.size() != b.tables.size() ||
      a.threads.size() != b.threads.size() || a.extensions.size() != b.extensions.size())
    return false;
  for (size_t i = 0; i < a.memories.size(); ++i) {
    const auto& x = a.memories[i].contents.data;
    const auto& y = b.memories[i].contents.data;
    if (x.size() != y.size() || (!x.empty() && std::memcmp(x.data(), y.data(), x.size()) != 0))
      return false;
  }
  for (size_t i = 0; i < a.globals.size(); ++i)
    if (a.globals[i].mut != b.globals[i].mut || a.globals[i].value != b.globals[i].value)
      return false;
  for (size_t i = 0; i < a.tables.size(); ++i)
    if (a.tables[i].elements != b.tables[i].elements || a.tables[i].max != b.tables[i].max)
      return false;
  for (size_t i = 0; i < a.threads.size(); ++i)
    if (a.threads[i].id != b.threads[i].id || !(a.threads[i].view == b.threads[i].view))
      return false;
  for (size_t i = 0; i < a.extensions.size(); ++i)
    if (a.extensions[i].tag != b.extensions[i].tag ||
        a.extensions[i].payload != b.extensions[i].payload)
      return false;
  return a.segments.elem_dropped == b.segments.elem_dropped &&
         a.segments.data_dropped == b.segments.data_dropped;
}

// Round trips only for memories up to 64 MiB: a few bytes of zstd can
// stand for gigabytes of pages, which is valid but slow to re-encode.
constexpr uint64_t kMaxRoundTripPages = 1024;

void run(const uint8_t* data, size_t size) {
  ReadOptions verify_only;
  verify_only.keep_memory = false;
  tern::util::SpanSource probe({data, size});
  uint64_t pages = 0;
  for (const MemoryImage& m : read_snapshot(probe, verify_only).memories) pages += m.pages;
  if (pages > kMaxRoundTripPages) return;

  tern::util::SpanSource source({data, size});
  const Snapshot first = read_snapshot(source);
  check_read(first);
  for (const ExtensionSection& e : first.extensions) check_wasi_state(e);
  tern::util::VectorSink sink;
  write_snapshot(first, sink);
  tern::util::SpanSource again(sink.bytes());
  if (!same(first, read_snapshot(again))) invariant_broken();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  accept_wrong_checksums_for_fuzzing();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    run(data, size);
  } catch (const tern::Error&) {
    // Rejected input: the expected outcome for most of it.
  }
  return 0;
}
