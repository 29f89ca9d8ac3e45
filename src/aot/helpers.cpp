// The runtime services compiled code calls through its helper table
// (aot/abi.h): traps, the slow paths of stable points, host calls, and the
// bulk memory and table instructions. Semantics and messages are the
// interpreter's (interp/interpreter.cpp).
//
// A helper that traps records the trap in the thread and jumps to the
// engine's entry: nothing with a destructor may be alive in its frame at
// that point, hence the split into a "check" part that returns a trap kind
// and the jump.
#include "aot/engine_state.h"
#include "runtime/atomics.h"
#include "runtime/store.h"
#include "runtime/view_frames.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <utility>

namespace tern::aot {
namespace {

using runtime::Slot;
using runtime::TrapKind;

ThreadState& ts_of(VmThread* t) {
  return ThreadState::of(t);
}
InstanceRecord& rec_of(VmInstance* ctx) {
  return InstanceRecord::of(ctx);
}

[[noreturn]] void trap_now(VmThread* t, uint32_t kind) {
  raise_trap(ts_of(t), static_cast<TrapKind>(kind), ~0u, 0, 0);
}

// --- Stable points -----------------------------------------------------------

// stop_here of the interpreter: counts in counting mode; stop on a count
// reached or a request.
bool should_stop(ThreadState& ts) {
  uint32_t flag = ts.thread->store().interrupt().flag()->load(std::memory_order_relaxed);
  const bool skip = std::exchange(ts.skip_next_count, false);
  if ((flag & runtime::Interrupt::kCounting) && !skip) {
    if (++ts.thread->stable_points == ts.thread->stop_at) return true;
  }
  return (flag & runtime::Interrupt::kRequested) != 0;
}

uint32_t poll_result(ThreadState& ts) {
  if (!should_stop(ts)) return uint32_t(PollAction::Continue);
  ts.vm.unwinding = 1;
  return uint32_t(PollAction::Unwind);
}

uint32_t entry_slow(VmThread* t, VmInstance* ctx, uint32_t func_index, uint64_t sp) {
  ThreadState& ts = ts_of(t);
  if (sp < t->stack_limit) {
    const uint32_t at = rec_of(ctx).module().defined_func(func_index).body_begin;
    raise_trap(ts, TrapKind::CallStackExhausted, func_index, at, 0);
  }
  if (!ts.rewinding) return poll_result(ts);
  // The frames were checked against the code when restored: this call is
  // the next one's function.
  const SavedFrame& f = ts.rewind[ts.rewind_next++];
  const bool host =
      f.kind == runtime::FrameKind::HostCall || f.kind == runtime::FrameKind::AtomicWait;
  t->rewind_point = RewindKey{f.point, host}.encode();
  t->rewind_values = ts.rewind_values.data() + f.first;
  if (ts.rewind_next == ts.rewind.size() && f.kind == runtime::FrameKind::FunctionEntry)
    finish_rewind(ts);
  return uint32_t(PollAction::Rewind);
}

uint32_t loop_slow(VmThread* t, uint32_t /*point*/) {
  ThreadState& ts = ts_of(t);
  return ts.rewinding ? uint32_t(PollAction::Rewind) : poll_result(ts);
}

void rewind_finish(VmThread* t, uint32_t skip_next_count) {
  ThreadState& ts = ts_of(t);
  finish_rewind(ts);
  ts.skip_next_count = skip_next_count != 0;
}

const VmFunc* rewind_callee(VmThread* t) {
  ThreadState& ts = ts_of(t);
  const SavedFrame& callee = ts.rewind[ts.rewind_next];
  return &callee.inst->funcs[callee.func_index];
}

uint64_t* save_frame(VmThread* t, VmInstance* ctx, uint32_t func_index, uint32_t point,
                     uint32_t count) {
  ThreadState& ts = ts_of(t);
  InstanceRecord& rec = rec_of(ctx);
  SavedFrame f;
  f.inst = &rec;
  f.func_index = func_index;
  f.point = point;
  f.kind = runtime::frame_kind(rec.module().defined_func(func_index).info.stable_points[point].kind,
                               ts.host_suspended);
  ts.host_suspended = false;
  f.first = ts.saved_values.size();
  f.count = count;
  ts.saved.push_back(f);
  ts.saved_values.resize(f.first + count, 0);
  return ts.saved_values.data() + f.first;
}

// --- Host calls ----------------------------------------------------------------

// Calls the host function; on trap or exit, records it in `ts` and says so.
bool host_call_returns(ThreadState& ts, HostImport& import, uint64_t* slots) {
  const runtime::FunctionInstance* f = import.func;
  const size_t n_params = f->type->params.size();
  std::vector<Slot> args(slots, slots + n_params);
  runtime::CallContext ctx{*ts.thread,
                           import.caller ? InstanceRecord::of(import.caller).instance : nullptr};
  ts.in_wasm = false;
  runtime::HostResult r =
      f->host->callback(ctx, args, std::span<Slot>(slots, f->type->results.size()));
  ts.in_wasm = true;
  switch (r.status) {
  case runtime::HostStatus::Ok:
    return true;
  case runtime::HostStatus::Suspend:
    ts.host_suspended = true;
    ts.vm.unwinding = 1;
    return true;
  case runtime::HostStatus::Exit:
    ts.exit = Exit::ProcExit;
    ts.exit_code = r.exit_code;
    return false;
  case runtime::HostStatus::Trap:
    ts.exit = Exit::Trap;
    ts.trap = {};
    ts.trap.kind = TrapKind::Host;
    ts.trap.message = std::move(r.message);
    return false;
  }
  return true;
}

void call_host(VmThread* t, HostImport* import, uint64_t* slots) {
  ThreadState& ts = ts_of(t);
  if (!host_call_returns(ts, *import, slots)) jump_out(ts);
}

// --- Memory ---------------------------------------------------------------------

runtime::Memory& memory_of(VmInstance* ctx) {
  return *rec_of(ctx).instance->memory0();
}

uint32_t memory_grow(VmThread*, VmInstance* ctx, uint32_t delta) {
  return static_cast<uint32_t>(memory_of(ctx).grow(delta));
}

void memory_fill(VmThread* t, VmInstance* ctx, uint32_t dst, uint32_t value, uint32_t n) {
  runtime::Memory& mem = memory_of(ctx);
  if (!mem.in_bounds(dst, n)) trap_now(t, uint32_t(TrapKind::MemoryOutOfBounds));
  std::memset(mem.base() + dst, static_cast<uint8_t>(value), n);
}

void memory_copy(VmThread* t, VmInstance* ctx, uint32_t dst, uint32_t src, uint32_t n) {
  runtime::Memory& mem = memory_of(ctx);
  if (!mem.in_bounds(dst, n) || !mem.in_bounds(src, n))
    trap_now(t, uint32_t(TrapKind::MemoryOutOfBounds));
  std::memmove(mem.base() + dst, mem.base() + src, n);
}

void memory_init(VmThread* t, VmInstance* ctx, uint32_t segment, uint32_t dst, uint32_t src,
                 uint32_t n) {
  InstanceRecord& rec = rec_of(ctx);
  const wasm::Module& m = rec.module();
  const wasm::DataSegment& seg = m.datas[segment];
  uint64_t seg_size = rec.instance->data_dropped[segment] ? 0 : seg.size;
  runtime::Memory& mem = *rec.instance->memory0();
  if (uint64_t(src) + n > seg_size || !mem.in_bounds(dst, n))
    trap_now(t, uint32_t(TrapKind::MemoryOutOfBounds));
  if (n) std::memcpy(mem.base() + dst, m.bytes.data() + seg.begin + src, n);
}

void data_drop(VmThread*, VmInstance* ctx, uint32_t segment) {
  rec_of(ctx).instance->data_dropped[segment] = true;
}

// memory.atomic.wait32/64 and notify: aligned, in bounds; wait needs a
// shared memory (runtime/wait_queue.h).
void check_atomic(VmThread* t, const runtime::Memory& mem, uint64_t ea, uint32_t bytes) {
  if (!runtime::atomics::aligned(ea, bytes)) trap_now(t, uint32_t(TrapKind::UnalignedAtomic));
  if (!mem.in_bounds(ea, bytes)) trap_now(t, uint32_t(TrapKind::MemoryOutOfBounds));
}

uint32_t atomic_wait(VmThread* t, VmInstance* ctx, uint64_t ea, uint64_t expected,
                     uint64_t timeout_ns, uint32_t bytes) {
  runtime::Memory& mem = memory_of(ctx);
  check_atomic(t, mem, ea, bytes);
  runtime::WaitQueues* queues = mem.wait_queues();
  if (!queues) trap_now(t, uint32_t(TrapKind::ExpectedSharedMemory));
  ThreadState& ts = ts_of(t);
  // Code compiled without stable points cannot stop at the wait: a
  // checkpoint request does not interrupt it (it would return early).
  const bool stoppable = (rec_of(ctx).code->info().flags & kStablePoints) != 0;
  auto r = queues->wait(ea, mem.base() + ea, bytes, expected, static_cast<int64_t>(timeout_ns),
                        {ts.thread->id, stoppable ? ts.thread->store().interrupt().fd() : -1});
  if (r.outcome == runtime::WaitQueues::Outcome::Interrupted) {
    // Unwind from the wait's stable point; rewinding issues it again.
    ts.host_suspended = true;
    ts.vm.unwinding = 1;
    return 0;
  }
  return static_cast<uint32_t>(r.outcome);
}

uint32_t atomic_notify(VmThread* t, VmInstance* ctx, uint64_t ea, uint32_t count) {
  runtime::Memory& mem = memory_of(ctx);
  check_atomic(t, mem, ea, 4);
  runtime::WaitQueues* queues = mem.wait_queues();
  return queues ? queues->notify(ea, count) : 0;
}

// --- Tables -----------------------------------------------------------------------

runtime::Table& table_of(VmInstance* ctx, uint32_t index) {
  return *rec_of(ctx).instance->tables[index];
}

uint64_t table_get(VmThread* t, VmInstance* ctx, uint32_t table, uint32_t index) {
  runtime::Table& tb = table_of(ctx, table);
  if (index >= tb.size()) trap_now(t, uint32_t(TrapKind::TableOutOfBounds));
  return tb.get(index);
}

void table_set(VmThread* t, VmInstance* ctx, uint32_t table, uint32_t index, uint64_t value) {
  runtime::Table& tb = table_of(ctx, table);
  if (index >= tb.size()) trap_now(t, uint32_t(TrapKind::TableOutOfBounds));
  tb.set(index, value);
}

uint32_t table_grow(VmThread*, VmInstance* ctx, uint32_t table, uint64_t init, uint32_t delta) {
  return static_cast<uint32_t>(table_of(ctx, table).grow(delta, init));
}

void table_fill(VmThread* t, VmInstance* ctx, uint32_t table, uint32_t index, uint64_t value,
                uint32_t n) {
  runtime::Table& tb = table_of(ctx, table);
  if (uint64_t(index) + n > tb.size()) trap_now(t, uint32_t(TrapKind::TableOutOfBounds));
  std::fill_n(tb.data() + index, n, value);
}

void table_copy(VmThread* t, VmInstance* ctx, uint32_t dst_table, uint32_t src_table, uint32_t dst,
                uint32_t src, uint32_t n) {
  runtime::Table& dt = table_of(ctx, dst_table);
  runtime::Table& st = table_of(ctx, src_table);
  if (uint64_t(dst) + n > dt.size() || uint64_t(src) + n > st.size())
    trap_now(t, uint32_t(TrapKind::TableOutOfBounds));
  if (n) std::memmove(dt.data() + dst, st.data() + src, n * sizeof(Slot));
}

void table_init(VmThread* t, VmInstance* ctx, uint32_t table, uint32_t segment, uint32_t dst,
                uint32_t src, uint32_t n) {
  InstanceRecord& rec = rec_of(ctx);
  runtime::Table& tb = table_of(ctx, table);
  const auto& seg = rec.instance->elem_segments[segment];
  if (uint64_t(src) + n > seg.size() || uint64_t(dst) + n > tb.size())
    trap_now(t, uint32_t(TrapKind::TableOutOfBounds));
  if (n) std::memcpy(tb.data() + dst, seg.data() + src, n * sizeof(Slot));
}

void elem_drop(VmThread*, VmInstance* ctx, uint32_t segment) {
  rec_of(ctx).instance->elem_segments[segment].clear();
}

void trap(VmThread* t, uint32_t kind, uint32_t func_index, uint32_t wasm_offset, uint32_t detail) {
  raise_trap(ts_of(t), static_cast<TrapKind>(kind), func_index, wasm_offset, detail);
}

} // namespace

void* const* helper_table() {
  static void* const table[kNumHelpers] = {
      reinterpret_cast<void*>(&trap),          reinterpret_cast<void*>(&entry_slow),
      reinterpret_cast<void*>(&loop_slow),     reinterpret_cast<void*>(&rewind_finish),
      reinterpret_cast<void*>(&rewind_callee), reinterpret_cast<void*>(&save_frame),
      reinterpret_cast<void*>(&call_host),     reinterpret_cast<void*>(&memory_grow),
      reinterpret_cast<void*>(&memory_fill),   reinterpret_cast<void*>(&memory_copy),
      reinterpret_cast<void*>(&memory_init),   reinterpret_cast<void*>(&data_drop),
      reinterpret_cast<void*>(&table_get),     reinterpret_cast<void*>(&table_set),
      reinterpret_cast<void*>(&table_grow),    reinterpret_cast<void*>(&table_fill),
      reinterpret_cast<void*>(&table_copy),    reinterpret_cast<void*>(&table_init),
      reinterpret_cast<void*>(&elem_drop),     reinterpret_cast<void*>(&atomic_wait),
      reinterpret_cast<void*>(&atomic_notify),
  };
  static_assert(std::size(table) == kNumHelpers);
  return table;
}

[[noreturn]] void jump_out(ThreadState& ts) {
  siglongjmp(*ts.jump, 1);
}

} // namespace tern::aot
