// Stable points in compiled code (docs/aot.md, "Stable points").
//
// With stable points, three cold paths join the fast code:
// - poll: at the function entry and every loop header, one load of the
//   store's interrupt word and a branch. Its slow path asks the runtime
//   (EntrySlow / LoopSlow) whether to run on, unwind or rewind.
// - unwind: after every wasm call, a load of VmThread::unwinding and a
//   branch. When set (the callee saved its frame), and at a poll that says
//   so, the function stores its live locals and operands (SaveFrame) and
//   returns at once.
// - rewind: the entry's slow path, when rebuilding a thread, dispatches on
//   the saved point. To keep loops reducible it never jumps into a loop
//   body: it goes to the outermost enclosing loop's header, whose poll
//   (taken, since VmThread::flag has kRewindingBit set) goes on to the next
//   inner header, until the block of the point itself, which reloads the
//   values from VmThread::rewind_values and continues into the call (which
//   rewinds its callee), or enters the loop (for a loop header: its block
//   is just before the loop).
//
// Code compiled without exact points (the default; exact ones are for
// counting, --checkpoint-at) also polls before each innermost loop without
// calls, and may lose the polls inside those whose trip count is known on
// entry (backend.cpp, ElidePolls): such loops vectorize. Its loops that
// call a defined function first on every iteration do not poll at their
// header (the callee's entry does). The slow paths' helpers are called
// through preserve_most thunks (ModuleCodegen::preserving_thunk).
#include "aot/llvm/function_codegen.h"
#include "tern/error.h"

#include <algorithm>
#include <fmt/format.h>

namespace tern::aot::llvmc {

// --- Hooks -------------------------------------------------------------------------

void FunctionCodegen::prepare_stable_points() {
  if (stable_points_) liveness_ = std::make_unique<wasm::LocalLiveness>(wasm_, func_index_);
}

void FunctionCodegen::at_function_entry(llvm::BasicBlock* body) {
  if (stable_points_)
    emit_entry_poll(body);
  else
    b_.CreateBr(body);
}

// An innermost loop without calls, outside a restore clone.
bool FunctionCodegen::loop_needs_restore_clone() const {
  return stable_points_ && !in_clone_ && innermost_without_calls(pc_, matching_end(pc_));
}

void FunctionCodegen::before_loop_header(const wasm::Instr& in, Loop& loop, bool restorable) {
  if (!stable_points_) return;
  loop.point = point_index(in.offset, StablePointKind::LoopHeader);
  enter_loop(loop.point, restorable, innermost_without_calls(pc_, matching_end(pc_)));
  loop.polls = mc_.options().exact_points || !starts_with_call(pc_);
}

void FunctionCodegen::at_loop_header(int loop) {
  if (!stable_points_) return;
  loop_chain_.push_back(loop);
  emit_header_poll(loops_[size_t(loop)]);
}

void FunctionCodegen::after_loop() {
  if (stable_points_) loop_chain_.pop_back();
}

void FunctionCodegen::finish_stable_points() {
  if (stable_points_) build_dispatch();
}

std::vector<llvm::PHINode*> FunctionCodegen::merge_into(llvm::BasicBlock* at,
                                                        const std::vector<llvm::Value*>& values) {
  llvm::BasicBlock* from = b_.GetInsertBlock();
  b_.CreateBr(at);
  b_.SetInsertPoint(at);
  std::vector<llvm::PHINode*> phis;
  for (llvm::Value* v : values) {
    llvm::PHINode* phi = b_.CreatePHI(v->getType(), 2);
    phi->addIncoming(v, from);
    phis.push_back(phi);
  }
  return phis;
}

FunctionCodegen::CallSite
FunctionCodegen::around_call(uint32_t point, const CallLayout& layout,
                             const std::vector<llvm::Value*>& merged,
                             const std::function<llvm::Value*(const CallSite&)>& issue,
                             const std::function<std::vector<llvm::Value*>()>& rewind_callee) {
  CallSite site;
  site.layout = layout;
  site.block = block("call");
  site.phis = merge_into(site.block, merged);
  site.result = issue(site);
  llvm::Value* unwinding =
      mc_.load_runtime(b_, b_.getInt32Ty(), thread(), offsets::kThreadUnwinding, false);
  llvm::BasicBlock* unwind = block("call_unwind");
  site.cont = block("call_cont");
  emit_unwind_check(unwinding, unwind, site.cont);

  b_.SetInsertPoint(unwind);
  emit_unwind(point,
              std::vector<llvm::Value*>(site.phis.begin(), site.phis.begin() + layout.saved));

  // Rewinding to this call: reload the operands below the arguments; the
  // callee rewinds itself and ignores its (zero) arguments.
  llvm::BasicBlock* restore = begin_restore(RewindKey{point}.encode(), "restore_call", loop_chain_);
  std::vector<llvm::Type*> types;
  for (size_t i = 0; i < layout.below; ++i) types.push_back(site.phis[i]->getType());
  std::vector<llvm::Value*> values = emit_reload(point, types);
  for (size_t i = 0; i < layout.args; ++i)
    values.push_back(llvm::Constant::getNullValue(site.phis[layout.below + i]->getType()));
  for (llvm::Value* v : rewind_callee()) values.push_back(v);
  for (size_t i = 0; i < site.phis.size(); ++i) site.phis[i]->addIncoming(values[i], restore);
  b_.CreateBr(site.block);
  return site;
}
// --- Polls -------------------------------------------------------------------------

uint32_t FunctionCodegen::point_index(uint32_t offset, StablePointKind kind) const {
  const wasm::StablePoint* p = fn_.info.find(offset, kind);
  if (!p)
    throw Error(fmt::format("compiler: no stable point recorded at offset 0x{:x} in {}", offset,
                            wasm_.func_name(func_index_)));
  return static_cast<uint32_t>(p - fn_.info.stable_points.data());
}

llvm::Value* FunctionCodegen::poll_pending() {
  // The flags byte of VmThread::limit_and_flags. Volatile rather than
  // atomic: every poll reads it afresh, and x86 folds the load into the
  // compare (byte loads are atomic everywhere).
  const uint32_t at = offsets::flag_byte(mc_.options().target.big_endian());
  llvm::LoadInst* flag =
      b_.CreateLoad(b_.getInt8Ty(), b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), thread(), at));
  flag->setVolatile(true);
  flag->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().runtime);
  return b_.CreateICmpNE(flag, b_.getInt8(0));
}

// One compare for the stack limit and the flags (VmThread::limit_and_flags):
// the slow path tells deep recursion (a trap) from a poll.
void FunctionCodegen::emit_entry_poll(llvm::BasicBlock* body) {
  llvm::BasicBlock* slow = block("entry_slow");
  llvm::LoadInst* word = b_.CreateLoad(b_.getInt64Ty(), thread());
  word->setVolatile(true);
  word->setAlignment(llvm::Align(8));
  word->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().runtime);
  llvm::BranchInst* br = b_.CreateCondBr(b_.CreateICmpULT(entry_sp_, word), slow, body);
  set_unlikely(br);
  if (!mc_.options().exact_points) mark(br, kElidablePoll);
  b_.SetInsertPoint(slow);
  llvm::Value* action =
      call_helper(Helper::EntrySlow, {thread(), instance(), u32(func_index_), entry_sp_});
  llvm::BasicBlock* unwind = block("entry_unwind");
  entry_dispatch_ = block("entry_rewind");
  llvm::SwitchInst* sw = b_.CreateSwitch(action, body, 2);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Unwind)), unwind);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Rewind)), entry_dispatch_);
  const uint32_t point = point_index(fn_.body_begin, StablePointKind::FunctionEntry);
  b_.SetInsertPoint(unwind);
  emit_unwind(point, {});
  begin_restore(RewindKey{point}.encode(), "restore_entry", {});
  emit_reload(point, {});
  b_.CreateBr(body);
}

// Before a loop: in code without exact points, a poll that the header's
// may be dropped for (backend.cpp, ElidePolls); in all code, the block that
// rewinding to the loop header lands in. Both enter the loop from outside,
// so the loop keeps a single entry.
//
// Only innermost loops without calls (`elidable`) get the poll before them:
// every other loop holds a rewind target (a call's or an inner loop's
// restore block), so ElidePolls keeps its header's poll, which runs right
// after and would make this one redundant.
void FunctionCodegen::enter_loop(uint32_t point, bool restorable, bool elidable) {
  llvm::BasicBlock* entry = block("loop_entry");
  llvm::BasicBlock* from = b_.GetInsertBlock();
  std::vector<llvm::BasicBlock*> preds = {from};
  if (!mc_.options().exact_points && elidable) {
    llvm::BasicBlock* slow = block("preloop_slow");
    llvm::BranchInst* br = b_.CreateCondBr(poll_pending(), slow, entry);
    set_unlikely(br);
    mark(br, kPreloopPoll);
    b_.SetInsertPoint(slow);
    llvm::Value* action = call_helper(Helper::LoopSlow, {thread(), u32(point)});
    llvm::BasicBlock* unwind = block("preloop_unwind");
    llvm::SwitchInst* sw = b_.CreateSwitch(action, entry, 1);
    sw->addCase(b_.getInt32(uint32_t(PollAction::Unwind)), unwind);
    b_.SetInsertPoint(unwind);
    emit_unwind(point, stack_);
    preds.push_back(slow);
  } else {
    b_.CreateBr(entry);
  }
  if (!restorable) {
    b_.SetInsertPoint(entry);
    return;
  }

  llvm::BasicBlock* restore = begin_restore(RewindKey{point}.encode(), "restore_loop", loop_chain_);
  std::vector<llvm::Type*> types;
  for (llvm::Value* v : stack_) types.push_back(v->getType());
  std::vector<llvm::Value*> restored = emit_reload(point, types);
  // The header's poll comes next: it must not count this point again.
  call_helper(Helper::RewindFinish, {thread(), u32(1)});
  b_.CreateBr(entry);

  b_.SetInsertPoint(entry);
  for (size_t i = 0; i < stack_.size(); ++i) {
    llvm::PHINode* phi = b_.CreatePHI(stack_[i]->getType(), unsigned(preds.size() + 1));
    for (llvm::BasicBlock* pred : preds) phi->addIncoming(stack_[i], pred);
    phi->addIncoming(restored[i], restore);
    stack_[i] = phi;
  }
}

// An innermost loop without calls is emitted twice: the loop itself, which
// nothing but its preheader enters, so that its induction variables start
// from known values (trip counts, vectorization); and a clone that only
// rewinding to the loop's header enters, with the reloaded values. Both go
// on to the same code after the loop.
void FunctionCodegen::emit_loop_with_restore_clone(const wasm::Instr& in, size_t end) {
  const size_t begin = pc_;
  const std::vector<llvm::Value*> entry_stack = stack_;
  const std::vector<int> chain = loop_chain_;
  const uint32_t point = point_index(in.offset, StablePointKind::LoopHeader);

  open_loop(in, /*restorable=*/false);
  for (++pc_; pc_ <= end; ++pc_) step();
  struct Exit {
    bool live;
    llvm::BasicBlock* block;
    std::vector<llvm::Value*> stack;
  };
  Exit original{!dead_, b_.GetInsertBlock(), stack_};

  begin_restore(RewindKey{point}.encode(), "restore_loop", chain);
  std::vector<llvm::Type*> types;
  for (llvm::Value* v : entry_stack) types.push_back(v->getType());
  stack_ = emit_reload(point, types);
  call_helper(Helper::RewindFinish, {thread(), u32(1)}); // the clone's header poll is next
  dead_ = false;
  in_clone_ = true;
  pc_ = begin;
  open_loop(in, /*restorable=*/false);
  for (++pc_; pc_ <= end; ++pc_) step();
  in_clone_ = false;
  Exit clone{!dead_, b_.GetInsertBlock(), stack_};
  pc_ = end; // the caller's loop steps past the end

  if (!original.live && !clone.live) {
    dead_ = true;
    return;
  }
  if (!original.live || !clone.live) {
    const Exit& only = original.live ? original : clone;
    b_.SetInsertPoint(only.block);
    stack_ = only.stack;
    dead_ = false;
    return;
  }
  llvm::BasicBlock* join = block("loop_join");
  b_.SetInsertPoint(original.block);
  b_.CreateBr(join);
  b_.SetInsertPoint(clone.block);
  b_.CreateBr(join);
  b_.SetInsertPoint(join);
  stack_.clear();
  for (size_t i = 0; i < original.stack.size(); ++i) {
    llvm::PHINode* phi = b_.CreatePHI(original.stack[i]->getType(), 2);
    phi->addIncoming(original.stack[i], original.block);
    phi->addIncoming(clone.stack[i], clone.block);
    stack_.push_back(phi);
  }
  dead_ = false;
}

void FunctionCodegen::emit_header_poll(Loop& loop) {
  llvm::BasicBlock* cont = block("loop_body");
  if (!loop.polls) {
    // No poll: a register test that only rewinding's edges set.
    llvm::IRBuilder<> pb(loop.header, loop.header->begin());
    loop.rewinding = pb.CreatePHI(b_.getInt1Ty(), 2, "rewinding");
    loop.hop = block("loop_rewind");
    b_.CreateCondBr(loop.rewinding, loop.hop, cont);
    b_.SetInsertPoint(cont);
    return;
  }
  llvm::BasicBlock* slow = block("loop_slow");
  llvm::BranchInst* br = b_.CreateCondBr(poll_pending(), slow, cont);
  set_unlikely(br);
  if (!mc_.options().exact_points) mark(br, kElidablePoll);

  b_.SetInsertPoint(slow);
  llvm::Value* action = call_helper(Helper::LoopSlow, {thread(), u32(loop.point)});
  llvm::BasicBlock* unwind = block("loop_unwind");
  loop.hop = block("loop_rewind");
  llvm::SwitchInst* sw = b_.CreateSwitch(action, cont, 2);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Unwind)), unwind);
  sw->addCase(b_.getInt32(uint32_t(PollAction::Rewind)), loop.hop);

  b_.SetInsertPoint(unwind);
  emit_unwind(loop.point, stack_);
  b_.SetInsertPoint(cont);
}

// --- Unwinding -----------------------------------------------------------------------

void FunctionCodegen::emit_unwind_check(llvm::Value* unwinding, llvm::BasicBlock* unwind,
                                        llvm::BasicBlock* cont) {
  llvm::BranchInst* br = b_.CreateCondBr(b_.CreateICmpNE(unwinding, u32(0)), unwind, cont);
  set_unlikely(br);
  mark(br, kUnwindCheck);
}

// The live locals and `values` ride on the SaveFrame call as an operand
// bundle (kSaveBundle) until expand_saved_values stores them after
// optimization: the optimizer sees one call where it saw an address and a
// store per value.
void FunctionCodegen::emit_unwind(uint32_t point, const std::vector<llvm::Value*>& values) {
  const size_t n_locals = locals_.size();
  std::vector<llvm::Value*> saved;
  for (size_t i = 0; i < n_locals; ++i)
    if (liveness_->live(point, uint32_t(i))) {
      saved.push_back(u32(i));
      saved.push_back(b_.CreateLoad(local_types_[i], locals_[i]));
    }
  for (size_t i = 0; i < values.size(); ++i) {
    saved.push_back(u32(n_locals + i));
    saved.push_back(values[i]);
  }
  call_helper(Helper::SaveFrame,
              {thread(), instance(), u32(func_index_), u32(point), u32(n_locals + values.size())},
              {llvm::OperandBundleDef(kSaveBundle, saved)});
  emit_return_undef();
}

void FunctionCodegen::emit_return_undef() {
  llvm::Type* r = f_->getReturnType();
  if (r->isVoidTy())
    b_.CreateRetVoid();
  else
    b_.CreateRet(llvm::UndefValue::get(r));
}

// The stores of an unwind, as ModuleCodegen::to_slot and the store of each
// value would have been made before optimization.
bool expand_saved_values(llvm::Function& f) {
  const uint32_t tag = f.getContext().getOrInsertBundleTag(kSaveBundle)->getValue();
  llvm::MDNode* tbaa = alias_tags(f.getContext()).runtime;
  std::vector<llvm::CallBase*> calls;
  for (llvm::BasicBlock& bb : f)
    for (llvm::Instruction& inst : bb)
      if (auto* call = llvm::dyn_cast<llvm::CallBase>(&inst); call && call->getOperandBundle(tag))
        calls.push_back(call);
  for (llvm::CallBase* call : calls) {
    const llvm::OperandBundleUse bundle = *call->getOperandBundle(tag);
    const std::vector<llvm::Value*> saved(bundle.Inputs.begin(), bundle.Inputs.end());
    llvm::CallBase* plain = llvm::CallBase::removeOperandBundle(call, tag, call->getIterator());
    plain->copyMetadata(*call);
    call->replaceAllUsesWith(plain);
    call->eraseFromParent();
    llvm::IRBuilder<> b(plain->getNextNode());
    for (size_t k = 0; k + 1 < saved.size(); k += 2) {
      auto* index = llvm::dyn_cast<llvm::ConstantInt>(saved[k]);
      if (!index) return false;
      llvm::Value* v = saved[k + 1];
      llvm::Type* t = v->getType();
      if (t->isFloatTy()) v = b.CreateBitCast(v, b.getInt32Ty());
      if (v->getType()->isIntegerTy(32))
        v = b.CreateZExt(v, b.getInt64Ty());
      else if (t->isDoubleTy())
        v = b.CreateBitCast(v, b.getInt64Ty());
      llvm::StoreInst* s = b.CreateStore(
          v, b.CreateConstInBoundsGEP1_64(b.getInt64Ty(), plain, index->getZExtValue()));
      s->setMetadata(llvm::LLVMContext::MD_tbaa, tbaa);
    }
  }
  return true;
}

// --- Rewinding -----------------------------------------------------------------------

std::vector<llvm::Value*> FunctionCodegen::emit_reload(uint32_t point,
                                                       const std::vector<llvm::Type*>& types) {
  llvm::LoadInst* frame =
      mc_.load_runtime(b_, b_.getPtrTy(), thread(), offsets::kThreadRewindValues, false);
  mark(frame, kRewindTarget);
  auto load = [&](size_t i, llvm::Type* t) {
    llvm::LoadInst* s =
        b_.CreateLoad(b_.getInt64Ty(), b_.CreateConstInBoundsGEP1_64(b_.getInt64Ty(), frame, i));
    s->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().runtime);
    return mc_.from_slot(b_, s, t);
  };
  const size_t n_locals = locals_.size();
  for (size_t i = 0; i < n_locals; ++i)
    if (liveness_->live(point, uint32_t(i))) b_.CreateStore(load(i, local_types_[i]), locals_[i]);
  std::vector<llvm::Value*> out;
  for (size_t i = 0; i < types.size(); ++i) out.push_back(load(n_locals + i, types[i]));
  return out;
}

// Rewinding to a host call being re-issued: reload every operand of the
// call (arguments included) into `phis` and issue it again from `target`.
void FunctionCodegen::add_host_call_restore(uint32_t point, const std::vector<llvm::PHINode*>& phis,
                                            llvm::BasicBlock* target) {
  llvm::BasicBlock* restore =
      begin_restore(RewindKey{point, true}.encode(), "restore_host_call", loop_chain_);
  std::vector<llvm::Type*> types;
  for (llvm::PHINode* phi : phis) types.push_back(phi->getType());
  std::vector<llvm::Value*> values = emit_reload(point, types);
  call_helper(Helper::RewindFinish, {thread(), u32(0)});
  for (size_t i = 0; i < phis.size(); ++i) phis[i]->addIncoming(values[i], restore);
  b_.CreateBr(target);
}

llvm::SwitchInst* FunctionCodegen::dispatch_switch(llvm::BasicBlock* at) {
  b_.SetInsertPoint(at);
  llvm::Value* key =
      mc_.load_runtime(b_, b_.getInt32Ty(), thread(), offsets::kThreadRewindPoint, false);
  llvm::BasicBlock* bad = block("rewind_bad_point");
  llvm::SwitchInst* sw = b_.CreateSwitch(key, bad);
  b_.SetInsertPoint(bad);
  llvm::CallInst* call = call_helper(Helper::Trap, {thread(), u32(uint32_t(TrapKind::Unreachable)),
                                                    u32(func_index_), u32(fn_.body_begin), u32(1)});
  call->setDoesNotReturn();
  b_.CreateUnreachable();
  return sw;
}

// Each case gets its own edge block, so that a target's phis see one edge
// per predecessor; edges into a loop header give its phis no value (the
// header's poll sends rewinding onwards before anything reads them).
void FunctionCodegen::add_case(llvm::SwitchInst* sw, uint32_t key, llvm::BasicBlock* target) {
  llvm::BasicBlock* edge = block("rewind_edge");
  b_.SetInsertPoint(edge);
  b_.CreateBr(target);
  for (llvm::PHINode& phi : target->phis())
    phi.addIncoming(llvm::UndefValue::get(phi.getType()), edge);
  sw->addCase(b_.getInt32(key), edge);
  for (Loop& loop : loops_) {
    if (loop.header != target || !loop.rewinding) continue;
    loop.rewinding->setIncomingValueForBlock(edge, b_.getTrue());
    loop.rewind_edges.push_back(edge);
  }
}

void FunctionCodegen::build_dispatch() {
  llvm::SwitchInst* entry = dispatch_switch(entry_dispatch_);
  std::vector<llvm::SwitchInst*> hops;
  for (Loop& loop : loops_) hops.push_back(dispatch_switch(loop.hop));
  for (const Point& p : points_) {
    // The first hop, then one per enclosing loop, then the point's block.
    auto target_after = [&](size_t k) -> llvm::BasicBlock* {
      if (k < p.loops.size()) return loops_[size_t(p.loops[k])].header;
      return p.restore;
    };
    add_case(entry, p.key, target_after(0));
    for (size_t k = 0; k < p.loops.size(); ++k)
      add_case(hops[size_t(p.loops[k])], p.key, target_after(k + 1));
  }
  // Every other edge into a header without a poll: not rewinding.
  for (Loop& loop : loops_) {
    if (!loop.rewinding) continue;
    for (llvm::BasicBlock* pred : llvm::predecessors(loop.header))
      if (std::find(loop.rewind_edges.begin(), loop.rewind_edges.end(), pred) ==
          loop.rewind_edges.end())
        loop.rewinding->addIncoming(b_.getFalse(), pred);
  }
}

} // namespace tern::aot::llvmc
