// Between a module instance and the snapshot model. A checkpoint has two
// steps, so that the program stops only for the first:
//
//   1. In the pause (every thread stopped at a stable point):
//        threads = {{0, engine.capture(thread)}};
//        Snapshot s = capture_instance(instance, threads, options);
//      This copies globals, tables and frames (small) and refers to memory in
//      place: no memory is copied and nothing is hashed or compressed.
//   2. Encode and write: write_snapshot_file(path, s) while the program stays
//      stopped, or start_background_write (background.h), which forks so the
//      child writes from its copy-on-write image and the program continues
//      as soon as fork() returns.
//
// Restore: instantiate the same module afresh, then apply_snapshot() and
// engine.restore() each thread.
#pragma once

#include "runtime/instance.h"
#include "snapshot/model.h"

#include <span>
#include <string>
#include <vector>

namespace tern::snapshot {

struct CaptureOptions {
  bool embed_module = false; // carry the module binary in the snapshot
  std::string engine;        // execution mode, for the host description
};

// The description of this process (tern version, architecture, byte order,
// time now).
HostInfo current_host(std::string engine);

// A memory's image, its contents by reference (valid while the program
// stays stopped).
MemoryImage capture_memory(const runtime::Memory& memory);

// Step 1 above. `instance` must stay stopped (or be in a forked child's
// image) until the snapshot is written. Throws tern::Error for state that
// has no wasm view (host references, functions of other instances).
Snapshot capture_instance(const runtime::ModuleInstance& instance, std::vector<ThreadImage> threads,
                          const CaptureOptions& options = {});

// Before a background write (snapshot/background.h): gives every memory of
// `instance` that is a shared mapping (mirrored, runtime/memory.h) and whose
// contents `snapshot` still borrows a private copy, since the forked writer
// would otherwise see the program's later writes. Private memories are
// left alone: fork() preserves them copy-on-write. The copy is the pause's
// main cost for mirrored memories (docs/performance.md, "Snapshots"); of an
// snapshot written as a delta (`carried`: WriteOptions::carried_pages) only
// the pages it carries are copied.
void copy_shared_memories(const runtime::ModuleInstance& instance, Snapshot& snapshot,
                          const CarriedPages& carried = {});

// Throws tern::Error naming both hashes unless the module whose SHA-256 is
// `module_sha256` is the one the snapshot was taken of.
void check_module(const Snapshot& snapshot, const util::Sha256Digest& module_sha256);

// For ReadOptions::memory_target: grows memory `index` of a fresh instance
// to `pages`, clears what instantiation wrote into it (nothing, and then it
// is not scanned, for its own memories if it was made InitMode::ForRestore)
// and returns its bytes,
// so the reader decodes the snapshot's pages in place (apply_snapshot then
// leaves them as they are). Throws tern::Error if it cannot have that size.
std::span<uint8_t> prepare_memory_for_restore(runtime::ModuleInstance& instance, uint32_t index,
                                              uint64_t pages);
// The same for a memory that pages were already decoded into (a
// migration's later rounds and its final state): grows it to `pages` and
// keeps what it holds.
std::span<uint8_t> grow_memory_for_restore(runtime::ModuleInstance& instance, uint32_t index,
                                           uint64_t pages);

// Puts memories (size and contents), globals, tables and segment state of
// the snapshot into `instance`, a fresh instance of the snapshot's module
// (checked first). Threads are restored by the engine.
void apply_snapshot(const Snapshot& snapshot, runtime::ModuleInstance& instance);

// A thread started with wasi-threads' thread-spawn: its instance's own
// globals, tables and segment state (its memory is the program's, captured
// with the main instance). The instance stays stopped while it is read.
SpawnedThreadImage capture_spawned(const runtime::ModuleInstance& instance, uint32_t tid,
                                   uint32_t start_arg);

// Puts a spawned thread's globals, tables and segment state into
// `instance`, a fresh instance of the module (InitMode::ForRestore) that
// shares the restored memory. Throws tern::Error naming the thread.
void apply_spawned(const SpawnedThreadImage& image, runtime::ModuleInstance& instance);

} // namespace tern::snapshot
