// Blocks, loops, if/else and branches: the control stack and the phis
// that merge the operand stack where paths join.
#include "aot/llvm/function_codegen.h"

#include <map>

namespace tern::aot::llvmc {

void FunctionCodegen::skip(const wasm::Instr& in) {
  switch (in.op) {
  case Op::Block:
  case Op::Loop:
  case Op::If:
    ++skip_depth_;
    return;
  case Op::Else:
    if (skip_depth_ == 0) on_else();
    return;
  case Op::End:
    if (skip_depth_ == 0)
      on_end();
    else
      --skip_depth_;
    return;
  default:
    return;
  }
}

void FunctionCodegen::make_end_phis(Ctrl& c, const char* name) {
  c.end = block(name);
  c.phi_base = merged_from(c.base);
  llvm::IRBuilder<> pb(c.end);
  for (size_t h = c.phi_base; h < c.base; ++h)
    c.end_phis.push_back(pb.CreatePHI(stack_[h]->getType(), 2));
  for (llvm::Type* t : c.results) c.end_phis.push_back(pb.CreatePHI(t, 2));
}

void FunctionCodegen::on_block(const wasm::Instr& in) {
  Ctrl c;
  c.kind = CtrlKind::Block;
  block_signature(in.block, c.params, c.results);
  c.base = stack_.size() - c.params.size();
  make_end_phis(c, "block_end");
  ctrls_.push_back(std::move(c));
}

void FunctionCodegen::on_loop(const wasm::Instr& in) {
  if (loop_needs_restore_clone()) return emit_loop_with_restore_clone(in, matching_end(pc_));
  open_loop(in, /*restorable=*/stable_points_);
}

void FunctionCodegen::open_loop(const wasm::Instr& in, bool restorable) {
  Ctrl c;
  c.kind = CtrlKind::Loop;
  block_signature(in.block, c.params, c.results);
  c.base = stack_.size() - c.params.size();
  Loop loop;
  before_loop_header(in, loop, restorable);
  loop.header = block("loop");
  loop.phi_base = merged_from(c.base);
  llvm::IRBuilder<> pb(loop.header);
  for (size_t h = loop.phi_base; h < stack_.size(); ++h)
    loop.phis.push_back(pb.CreatePHI(stack_[h]->getType(), 2));
  c.loop = int(loops_.size());
  loops_.push_back(loop);
  Loop& l = loops_.back();
  // The entry edge: every phi'd entry from the current stack.
  llvm::BasicBlock* from = b_.GetInsertBlock();
  for (size_t i = 0; i < l.phis.size(); ++i) l.phis[i]->addIncoming(stack_[l.phi_base + i], from);
  b_.CreateBr(l.header);
  b_.SetInsertPoint(l.header);
  for (size_t i = 0; i < l.phis.size(); ++i) stack_[l.phi_base + i] = l.phis[i];
  ctrls_.push_back(std::move(c));
  at_loop_header(ctrls_.back().loop);
}

void FunctionCodegen::on_if(const wasm::Instr& in) {
  llvm::Value* cond = b_.CreateICmpNE(pop(), u32(0));
  Ctrl c;
  c.kind = CtrlKind::If;
  block_signature(in.block, c.params, c.results);
  c.base = stack_.size() - c.params.size();
  c.if_params.assign(stack_.begin() + c.base, stack_.end());
  c.entry_stack.assign(stack_.begin(), stack_.begin() + c.base);
  make_end_phis(c, "if_end");
  llvm::BasicBlock* then_block = block("then");
  c.else_block = block("else");
  b_.CreateCondBr(cond, then_block, c.else_block);
  b_.SetInsertPoint(then_block);
  ctrls_.push_back(std::move(c));
}

void FunctionCodegen::on_else() {
  Ctrl& c = ctrls_.back();
  if (!dead_) b_.CreateBr(edge_to(c));
  b_.SetInsertPoint(c.else_block);
  c.else_block = nullptr;
  stack_ = c.entry_stack;
  stack_.insert(stack_.end(), c.if_params.begin(), c.if_params.end());
  dead_ = false;
}

void FunctionCodegen::on_end() {
  Ctrl& c = ctrls_.back();
  if (c.kind == CtrlKind::Loop) {
    // Only the fall-through reaches a loop's end: straight-line code goes on.
    after_loop();
    ctrls_.pop_back();
    return;
  }
  if (!dead_) b_.CreateBr(edge_to(c));
  if (c.else_block) { // `if` without `else`: the parameters pass through
    b_.SetInsertPoint(c.else_block);
    stack_ = c.entry_stack;
    stack_.insert(stack_.end(), c.if_params.begin(), c.if_params.end());
    b_.CreateBr(edge_to(c));
  }
  llvm::BasicBlock* end = c.end;
  std::vector<llvm::PHINode*> phis = c.end_phis;
  size_t base = c.phi_base;
  bool body = c.kind == CtrlKind::Body;
  ctrls_.pop_back();
  stack_.resize(base);
  if (llvm::pred_empty(end)) {
    for (llvm::PHINode* phi : phis) phi->eraseFromParent();
    end->eraseFromParent();
    dead_ = true;
    return;
  }
  b_.SetInsertPoint(end);
  for (llvm::PHINode* phi : phis) push(phi);
  dead_ = false;
  if (body) finish_return_block();
}

void FunctionCodegen::on_br(uint32_t depth) {
  b_.CreateBr(edge_to(label(depth)));
  dead_ = true;
}

void FunctionCodegen::on_br_if(uint32_t depth) {
  llvm::Value* cond = b_.CreateICmpNE(pop(), u32(0));
  llvm::BasicBlock* target = edge_to(label(depth));
  llvm::BasicBlock* cont = block("br_if_cont");
  b_.CreateCondBr(cond, target, cont);
  b_.SetInsertPoint(cont);
}

void FunctionCodegen::on_br_table(const wasm::Instr& in) {
  llvm::Value* index = pop();
  // One block per distinct target, so that each target's phis see one edge.
  std::map<uint32_t, llvm::BasicBlock*> by_depth;
  for (uint32_t depth : in.targets) by_depth.emplace(depth, nullptr);
  llvm::BasicBlock* from = b_.GetInsertBlock();
  for (auto& [depth, bb] : by_depth) {
    bb = block("br_table_case");
    b_.SetInsertPoint(bb);
    b_.CreateBr(edge_to(label(depth)));
  }
  b_.SetInsertPoint(from);
  llvm::SwitchInst* sw =
      b_.CreateSwitch(index, by_depth[in.targets.back()], unsigned(in.targets.size() - 1));
  for (size_t i = 0; i + 1 < in.targets.size(); ++i)
    sw->addCase(b_.getInt32(uint32_t(i)), by_depth[in.targets[i]]);
  dead_ = true;
}

llvm::BasicBlock* FunctionCodegen::edge_to(Ctrl& target) {
  llvm::BasicBlock* from = b_.GetInsertBlock();
  if (target.kind == CtrlKind::Loop) {
    Loop& loop = loops_[size_t(target.loop)];
    // Entries below the loop are unchanged inside it: they are its phis.
    size_t n = target.params.size();
    size_t below = target.base - loop.phi_base;
    for (size_t i = 0; i < below; ++i) loop.phis[i]->addIncoming(stack_[loop.phi_base + i], from);
    for (size_t i = 0; i < n; ++i)
      loop.phis[below + i]->addIncoming(stack_[stack_.size() - n + i], from);
    return loop.header;
  }
  size_t n = target.results.size();
  size_t below = target.base - target.phi_base;
  for (size_t i = 0; i < below; ++i)
    target.end_phis[i]->addIncoming(stack_[target.phi_base + i], from);
  for (size_t i = 0; i < n; ++i)
    target.end_phis[below + i]->addIncoming(stack_[stack_.size() - n + i], from);
  return target.end;
}

void FunctionCodegen::finish_return_block() {
  std::vector<llvm::Value*> results(stack_.end() - type_.results.size(), stack_.end());
  if (results.empty())
    b_.CreateRetVoid();
  else if (results.size() == 1)
    b_.CreateRet(results[0]);
  else
    b_.CreateAggregateRet(results.data(), unsigned(results.size()));
}

// --- Scans ahead -----------------------------------------------------------------

size_t FunctionCodegen::matching_end(size_t begin) const {
  size_t depth = 0;
  for (size_t i = begin + 1; i < instrs_.size(); ++i) {
    switch (instrs_[i].op) {
    case Op::Block:
    case Op::Loop:
    case Op::If:
      ++depth;
      break;
    case Op::End:
      if (depth-- == 0) return i;
      break;
    default:
      break;
    }
  }
  return instrs_.size() - 1;
}

bool FunctionCodegen::innermost_without_calls(size_t begin, size_t end) const {
  for (size_t i = begin + 1; i < end; ++i) {
    Op op = instrs_[i].op;
    // A wait is a stable point with a rewind target, like a call.
    if (op == Op::Loop || op == Op::Call || op == Op::CallIndirect ||
        op == Op::MemoryAtomicWait32 || op == Op::MemoryAtomicWait64)
      return false;
  }
  return true;
}

// Whether every iteration of the loop at `begin` calls a function defined
// in the module before it can branch: that function's entry polls, so the
// loop's header need not (a request waits one call at most).
bool FunctionCodegen::starts_with_call(size_t begin) const {
  for (size_t i = begin + 1; i < instrs_.size(); ++i) {
    switch (instrs_[i].op) {
    case Op::Call:
      return !wasm_.is_imported_func(instrs_[i].a);
    case Op::Unreachable:
    case Op::Block:
    case Op::Loop:
    case Op::If:
    case Op::Else:
    case Op::End:
    case Op::Br:
    case Op::BrIf:
    case Op::BrTable:
    case Op::Return:
    case Op::CallIndirect:
      return false;
    default:
      break;
    }
  }
  return false;
}

} // namespace tern::aot::llvmc
