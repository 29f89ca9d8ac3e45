#include "snapshot/capture.h"

#include "snapshot/pages.h"
#include "tern/error.h"
#include "tern/version.h"

#include <bit>
#include <chrono>
#include <cstring>
#include <fmt/format.h>

namespace tern::snapshot {
namespace {

using runtime::from_view;
using runtime::index_to_ref;
using runtime::ModuleInstance;
using runtime::ref_to_index;
using runtime::Slot;
using runtime::to_view;
using wasm::ValType;

const char* host_arch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__i386__)
  return "i386";
#elif defined(__arm__)
  return "arm";
#else
  return "unknown";
#endif
}

TableImage capture_table(const ModuleInstance& inst, const runtime::Table& t, size_t index) {
  TableImage image;
  image.elem_type = t.elem_type();
  if (t.max()) image.max = static_cast<uint32_t>(*t.max());
  image.elements.resize(t.size());
  const std::string where = fmt::format("table {}", index);
  for (uint32_t i = 0; i < t.size(); ++i)
    image.elements[i] = ref_to_index(inst, t.elem_type(), t.get(i), where);
  return image;
}

// What an instance has of its own, besides memory: globals, tables and
// segment state.
void capture_own_state(const ModuleInstance& inst, std::vector<GlobalImage>& globals,
                       std::vector<TableImage>& tables, SegmentState& segments) {
  for (size_t i = 0; i < inst.globals.size(); ++i) {
    const runtime::GlobalCell& g = *inst.globals[i];
    globals.push_back(
        {g.type.mut, to_view(inst, g.type.type, g.value, fmt::format("global {}", i))});
  }
  for (size_t i = 0; i < inst.tables.size(); ++i)
    tables.push_back(capture_table(inst, *inst.tables[i], i));
  for (const auto& refs : inst.elem_segments) segments.elem_dropped.push_back(refs.empty());
  segments.data_dropped = inst.data_dropped;
}

void check_limits(const MemoryImage& image, const runtime::Memory& m, size_t index) {
  if (image.shared != m.shared() || image.max_pages != m.max_pages())
    throw Error(fmt::format("memory {}: its limits differ from the snapshot's", index));
}

// Grows `m` to `pages` and clears it, touching only pages that are not zero.
std::span<uint8_t> grow(runtime::Memory& m, uint64_t pages, size_t index) {
  if (pages < m.pages())
    throw Error(fmt::format("memory {}: the snapshot has {} pages, the fresh instance already {}",
                            index, pages, m.pages()));
  if (pages > m.pages() && m.grow(pages - m.pages()) < 0)
    throw Error(fmt::format("memory {}: cannot grow to {} pages", index, pages));
  return {m.base(), m.size()};
}

std::span<uint8_t> grow_and_clear(runtime::Memory& m, uint64_t pages, size_t index) {
  const std::span<uint8_t> bytes = grow(m, pages, index);
  const std::vector<bool> nonzero = find_nonzero_pages(bytes, !m.mirrored());
  for (uint64_t p = 0; p < pages; ++p)
    if (nonzero[p]) std::memset(bytes.data() + p * kPageSize, 0, kPageSize);
  return bytes;
}

void apply_memory(const MemoryImage& image, runtime::Memory& m, size_t index) {
  check_limits(image, m, index);
  if (image.contents.data.size() != image.pages * kPageSize)
    throw Error(fmt::format("memory {}: the snapshot's contents were not loaded", index));
  // Decoded in place (prepare_memory_for_restore): nothing left to do.
  if (image.contents.data.data() == m.base() && image.pages == m.pages()) return;
  const std::span<uint8_t> dst = grow_and_clear(m, image.pages, index);
  // Copy the non-zero pages; pages the page map shows untouched are skipped.
  const auto src = image.contents.data;
  const std::vector<bool> src_nonzero = find_nonzero_pages(src, image.private_mapping);
  for (uint64_t p = 0; p < image.pages; ++p)
    if (src_nonzero[p])
      std::memcpy(dst.data() + p * kPageSize, src.data() + p * kPageSize, kPageSize);
}

void apply_global(const ModuleInstance& inst, const GlobalImage& image, runtime::GlobalCell& cell,
                  size_t index) {
  const std::string where = fmt::format("global {}", index);
  if (image.value.type != cell.type.type || image.mut != cell.type.mut)
    throw Error(fmt::format("{}: its type differs from the snapshot's", where));
  if (cell.type.mut) {
    cell.value = from_view(inst, image.value, where);
    return;
  }
  // Immutable globals are recomputed by instantiation; they must agree.
  if (to_view(inst, cell.type.type, cell.value, where) != image.value)
    throw Error(fmt::format("{} is immutable and its value differs from the snapshot's", where));
}

void apply_table(const ModuleInstance& inst, const TableImage& image, runtime::Table& t,
                 size_t index) {
  const std::string where = fmt::format("table {}", index);
  const std::optional<uint64_t> max = image.max;
  if (image.elem_type != t.elem_type() || max != t.max())
    throw Error(fmt::format("{}: its type differs from the snapshot's", where));
  const auto size = static_cast<uint32_t>(image.elements.size());
  if (size < t.size())
    throw Error(fmt::format("{}: the snapshot has {} elements, the fresh instance already {}",
                            where, size, t.size()));
  if (size > t.size() && t.grow(size - t.size(), runtime::kNullRef) < 0)
    throw Error(fmt::format("{}: cannot grow to {} elements", where, size));
  for (uint32_t i = 0; i < size; ++i)
    t.set(i, index_to_ref(inst, image.elem_type, image.elements[i], where));
}

void apply_segments(const SegmentState& s, ModuleInstance& inst) {
  const wasm::Module& m = inst.module();
  if (s.elem_dropped.size() != m.elems.size() || s.data_dropped.size() != m.datas.size())
    throw Error(
        fmt::format("the snapshot has {} element and {} data segments, the module {} and {}",
                    s.elem_dropped.size(), s.data_dropped.size(), m.elems.size(), m.datas.size()));
  for (size_t i = 0; i < s.elem_dropped.size(); ++i) {
    auto& refs = inst.elem_segments[i];
    if (s.elem_dropped[i])
      refs.clear();
    else if (refs.size() != m.elems[i].items.size())
      throw Error(fmt::format("element segment {} is dropped by instantiation but not in the "
                              "snapshot",
                              i));
  }
  for (size_t i = 0; i < s.data_dropped.size(); ++i) {
    if (inst.data_dropped[i] && !s.data_dropped[i])
      throw Error(
          fmt::format("data segment {} is dropped by instantiation but not in the snapshot", i));
    inst.data_dropped[i] = s.data_dropped[i];
  }
}

template <typename A, typename B>
void check_count(const A& snapshot_items, const B& instance_items, std::string_view what) {
  if (snapshot_items.size() != instance_items.size())
    throw Error(fmt::format("the snapshot has {} {}, the instance {}", snapshot_items.size(), what,
                            instance_items.size()));
}

} // namespace

MemoryImage capture_memory(const runtime::Memory& m) {
  MemoryImage image;
  image.pages = m.pages();
  image.max_pages = m.max_pages();
  image.shared = m.shared();
  image.contents.data = {m.base(), m.size()};
  image.private_mapping = !m.mirrored();
  return image;
}

HostInfo current_host(std::string engine) {
  HostInfo h;
  h.tern_version = kVersion;
  h.arch = host_arch();
  h.big_endian = std::endian::native == std::endian::big;
  h.engine = std::move(engine);
  h.unix_time_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  return h;
}

Snapshot capture_instance(const ModuleInstance& inst, std::vector<ThreadImage> threads,
                          const CaptureOptions& options) {
  Snapshot s;
  s.host = current_host(options.engine);
  s.module.sha256 = inst.module().known_sha256; // else the writer computes it
  s.module.binary = {inst.module().bytes, inst.module_ptr()};
  s.module.embed_binary = options.embed_module;
  for (const runtime::Memory* m : inst.memories) s.memories.push_back(capture_memory(*m));
  capture_own_state(inst, s.globals, s.tables, s.segments);
  s.threads = std::move(threads);
  // Every thread is stopped: no waiter comes or goes while the queues are
  // read.
  for (size_t i = 0; i < inst.memories.size(); ++i)
    if (const runtime::WaitQueues* queues = inst.memories[i]->wait_queues()) {
      runtime::WaitQueues::State state = queues->capture();
      if (!state.empty()) s.wait_queues.push_back({static_cast<uint32_t>(i), std::move(state)});
    }
  return s;
}

void check_module(const Snapshot& snapshot, const util::Sha256Digest& actual) {
  const util::Sha256Digest expected =
      snapshot.module.sha256 ? *snapshot.module.sha256 : util::sha256(snapshot.module.binary.data);
  if (actual != expected)
    throw Error(fmt::format("the snapshot is of another module: it was taken of the module with "
                            "sha256 {}, this module's sha256 is {}",
                            util::to_hex(expected), util::to_hex(actual)));
}

void copy_shared_memories(const ModuleInstance& inst, Snapshot& s, const CarriedPages& carried) {
  for (size_t i = 0; i < inst.memories.size() && i < s.memories.size(); ++i) {
    const runtime::Memory& m = *inst.memories[i];
    MemoryImage& image = s.memories[i];
    if (!m.mirrored() || image.contents.owner) continue; // private, or copied already
    if (i < carried.size() && carried[i]) {
      // A delta: only the pages it carries, into memory that costs nothing
      // where nothing is copied.
      const std::vector<bool>& pages = *carried[i];
      auto copy = std::make_shared<PageBuffer>(m.size());
      for (uint64_t p = 0; p < pages.size() && p < image.pages; ++p)
        if (pages[p])
          std::memcpy(copy->bytes().data() + p * kPageSize, m.base() + p * kPageSize, kPageSize);
      image.contents = {copy->bytes(), copy};
      image.private_mapping = true; // PageBuffer: private anonymous memory
      continue;
    }
    auto copy = std::make_shared<std::vector<uint8_t>>(m.base(), m.base() + m.size());
    image.contents = {std::span<const uint8_t>(*copy), copy};
    image.private_mapping = false; // heap memory: read every page
  }
}

namespace {

runtime::Memory& memory_to_restore(ModuleInstance& inst, uint32_t index) {
  if (index >= inst.memories.size())
    throw Error(fmt::format("the snapshot has memory {}, the instance {} memories", index,
                            inst.memories.size()));
  return *inst.memories[index];
}

} // namespace

std::span<uint8_t> grow_memory_for_restore(ModuleInstance& inst, uint32_t index, uint64_t pages) {
  return grow(memory_to_restore(inst, index), pages, index);
}

std::span<uint8_t> prepare_memory_for_restore(ModuleInstance& inst, uint32_t index,
                                              uint64_t pages) {
  runtime::Memory& m = memory_to_restore(inst, index);
  // An own memory of an instance made for a restore was never written.
  const bool untouched = inst.init_mode == runtime::InitMode::ForRestore &&
                         index >= inst.module().num_imported_memories;
  return untouched ? grow(m, pages, index) : grow_and_clear(m, pages, index);
}

namespace {

// The waiters of each shared memory, parked at their places: every thread
// named is stopped at a wait (each issues it again when it continues and
// takes up its place, or returns "ok" if it had been notified).
void apply_wait_queues(const Snapshot& s, ModuleInstance& inst) {
  for (const WaitQueueImage& m : s.wait_queues) {
    runtime::WaitQueues* queues =
        m.memory < inst.memories.size() ? inst.memories[m.memory]->wait_queues() : nullptr;
    if (!queues)
      throw Error(fmt::format("the snapshot's wait queues are of memory {}, which is not a shared "
                              "memory of the module",
                              m.memory));
    auto check = [&](uint64_t id) {
      for (const ThreadImage& t : s.threads)
        if (t.id == id && !t.view.frames.empty() &&
            t.view.frames.back().kind == runtime::FrameKind::AtomicWait)
          return;
      throw Error(fmt::format("thread {} is in the snapshot's wait queues but not stopped at a "
                              "wait",
                              id));
    };
    for (const auto& q : m.state.queues)
      for (const auto& w : q.waiters) check(w.thread_id);
    for (const auto& w : m.state.woken) check(w.thread_id);
    queues->restore(m.state);
  }
}

void apply_own_state(const std::vector<GlobalImage>& globals, const std::vector<TableImage>& tables,
                     const SegmentState& segments, ModuleInstance& inst) {
  check_count(globals, inst.globals, "globals");
  check_count(tables, inst.tables, "tables");
  for (size_t i = 0; i < globals.size(); ++i) apply_global(inst, globals[i], *inst.globals[i], i);
  for (size_t i = 0; i < tables.size(); ++i) apply_table(inst, tables[i], *inst.tables[i], i);
  apply_segments(segments, inst);
}

} // namespace

void apply_snapshot(const Snapshot& s, ModuleInstance& inst) {
  check_module(s, inst.module().sha256());
  check_count(s.memories, inst.memories, "memories");
  for (size_t i = 0; i < s.memories.size(); ++i) apply_memory(s.memories[i], *inst.memories[i], i);
  apply_own_state(s.globals, s.tables, s.segments, inst);
  apply_wait_queues(s, inst);
}

SpawnedThreadImage capture_spawned(const ModuleInstance& inst, uint32_t tid, uint32_t start_arg) {
  SpawnedThreadImage image;
  image.tid = tid;
  image.start_arg = start_arg;
  capture_own_state(inst, image.globals, image.tables, image.segments);
  return image;
}

void apply_spawned(const SpawnedThreadImage& image, ModuleInstance& inst) {
  try {
    apply_own_state(image.globals, image.tables, image.segments, inst);
  } catch (const Error& e) {
    throw Error(fmt::format("thread {}: {}", image.tid, e.what()));
  }
}

} // namespace tern::snapshot
