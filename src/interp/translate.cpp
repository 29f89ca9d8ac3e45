// Wasm function body → interpreter code (code.h).
//
// The translator walks the validated body once, keeping a virtual operand
// stack whose entries say where each value is: already in its canonical
// slot, still in a local, or a constant. Consumers read locals and
// constants directly (`local.get a; local.get b; i32.add` reads a and b
// in place), and the last value-producing instruction is held back
// ("pending") until the next instruction shows where its result should go:
// `local.set x` retargets it into x, `br_if`/`if` fuse an integer compare
// into a compare-and-branch. Everything is written to canonical slots at
// every control-flow boundary and call, so stable points see the plain
// wasm-view layout (code.h).
#include "interp/code.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <optional>

namespace tern::interp {
namespace {

using wasm::Op;
using wasm::ValType;

// wasm op → handler, for the families derived from the opcode table.
struct HandlerMaps {
  std::array<Handler, wasm::kOpCount> ss{}, si{}, one{}, load_add_ss{}, load_add_si{}, absolute{};
  std::array<Handler, wasm::kOpCount> atomic{};
  std::array<bool, wasm::kOpCount> load{};
  std::array<Handler, size_t(Handler::Count)> back_edge{}; // branch → its ...Loop twin

  HandlerMaps() {
    back_edge[size_t(Handler::Br)] = Handler::BrLoop;
    back_edge[size_t(Handler::BrIfNz)] = Handler::BrIfNzLoop;
    back_edge[size_t(Handler::BrIfZ)] = Handler::BrIfZLoop;
#define TERN_COMPARE(op, inverse, mirror, type, condition)                                         \
  back_edge[size_t(Handler::BrIf##op##_ss)] = Handler::BrIf##op##_ssLoop;                          \
  back_edge[size_t(Handler::BrIf##op##_si)] = Handler::BrIf##op##_siLoop;
#include "interp/compare_branch.def"
#undef TERN_COMPARE
#define WASM_BINARY(n)                                                                             \
  ss[size_t(Op::n)] = Handler::n##_ss;                                                             \
  si[size_t(Op::n)] = Handler::n##_si;
#define WASM_UNARY(n) one[size_t(Op::n)] = Handler::n;
#define WASM_LOAD(n)                                                                               \
  WASM_UNARY(n)                                                                                    \
  load_add_ss[size_t(Op::n)] = Handler::n##_add_ss;                                                \
  load_add_si[size_t(Op::n)] = Handler::n##_add_si;                                                \
  load[size_t(Op::n)] = true;                                                                      \
  absolute[size_t(Op::n)] = Handler::n##_abs;
#define WASM_STORE(n)                                                                              \
  one[size_t(Op::n)] = Handler::n;                                                                 \
  absolute[size_t(Op::n)] = Handler::n##_abs;
#define WASM_ATOMIC(n) atomic[size_t(Op::n)] = Handler::n;
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
  }
};

const HandlerMaps& maps() {
  static const HandlerMaps m;
  return m;
}

// Integer comparisons that fuse with a following branch (compare_branch.def).
struct CompareFacts {
  Op op, inverted, mirrored;
  Handler branch_ss, branch_si;
};

constexpr CompareFacts kCompares[] = {
#define TERN_COMPARE(op, inverse, mirror, type, condition)                                         \
  {Op::op, Op::inverse, Op::mirror, Handler::BrIf##op##_ss, Handler::BrIf##op##_si},
#include "interp/compare_branch.def"
#undef TERN_COMPARE
};

const CompareFacts* compare_facts(Op op) {
  for (const auto& c : kCompares)
    if (c.op == op) return &c;
  return nullptr;
}

// Binary ops whose operands may be swapped as they are (compares are
// swapped through CompareFacts::mirrored instead).
bool is_commutative(Op op) {
  switch (op) {
  case Op::I32Add:
  case Op::I32Mul:
  case Op::I32And:
  case Op::I32Or:
  case Op::I32Xor:
  case Op::I64Add:
  case Op::I64Mul:
  case Op::I64And:
  case Op::I64Or:
  case Op::I64Xor:
  case Op::F32Add:
  case Op::F32Mul:
  case Op::F64Add:
  case Op::F64Mul:
  case Op::F32Eq:
  case Op::F32Ne:
  case Op::F64Eq:
  case Op::F64Ne:
    return true;
  default:
    return false;
  }
}

class Translator {
public:
  Translator(const wasm::Module& module, uint32_t func_index, const std::vector<uint32_t>& type_ids,
             const void* const* handlers)
      : module_(module), fn_(module.defined_func(func_index)), type_(module.func_type(func_index)),
        type_ids_(type_ids), handlers_(handlers) {
    out_.func_index = func_index;
    out_.num_params = static_cast<uint32_t>(type_.params.size());
    out_.num_locals = out_.num_params + static_cast<uint32_t>(fn_.locals.size());
  }

  CompiledFunction run();

private:
  // A value's location on the virtual operand stack.
  struct Entry {
    enum class Kind : uint8_t { Stack, Local, Const } kind = Kind::Stack;
    uint32_t slot = 0; // Local: the local's byte offset
    uint64_t k = 0;    // Const: the value
  };
  // An operand ready to encode: a slot, or (for _si forms) an immediate.
  struct Operand {
    bool is_const = false;
    uint32_t slot = 0;
    uint64_t k = 0;
  };
  // The held-back producer of the stack top: [handler][d|a][w2?][w3?].
  struct Pending {
    Handler handler;
    uint32_t a = 0;
    bool has_w2 = false;
    uint64_t w2 = 0;
    bool has_w3 = false;
    uint64_t w3 = 0;
    uint32_t wasm_offset = 0;
    const CompareFacts* compare = nullptr; // fusable integer compare
    bool rhs_is_imm = false;
    Op op = Op::Nop; // the wasm instruction it came from
  };
  struct Ctrl {
    Op kind = Op::Block; // Block (also the function body), Loop or If
    uint32_t base = 0;   // operand height below the block's parameters
    uint32_t num_params = 0;
    uint32_t num_results = 0;
    uint32_t loop_start = 0;            // Loop: code index of its Poll
    std::vector<uint32_t> end_fixups;   // words to patch with the end address
    std::optional<uint32_t> else_fixup; // If: the branch to the else arm
    uint32_t label_arity() const { return kind == Op::Loop ? num_params : num_results; }
  };

  // Emission.
  uint32_t here() const { return static_cast<uint32_t>(out_.code.size()); }
  void emit(Handler h) {
    last_mov_ = kNone;
    out_.code.push_back(Word{.handler = handlers_[size_t(h)]});
  }
  void emit_u64(uint64_t v) { out_.code.push_back(Word{.u64 = v}); }
  void emit_target(uint32_t code_index) {
    relocs_.push_back(here());
    emit_u64(code_index);
  }
  void emit_fixup(std::vector<uint32_t>& list) {
    list.push_back(here());
    emit_u64(0);
  }
  void bind(uint32_t word, uint32_t code_index) {
    out_.code[word].u64 = code_index;
    relocs_.push_back(word);
    if (code_index == here()) last_mov_ = kNone; // a label: no fusion across it
  }
  // Two moves in a row (values rotating through locals, branch copies)
  // become one Mov2.
  void emit_mov(uint32_t dst, uint32_t src) {
    if (dst == src) return;
    if (last_mov_ != kNone && last_mov_ + 2 == here()) {
      out_.code[last_mov_].handler = handlers_[size_t(Handler::Mov2)];
      emit_u64(pack(dst, src));
      last_mov_ = kNone;
      return;
    }
    emit(Handler::Mov);
    emit_u64(pack(dst, src));
    last_mov_ = here() - 2;
  }
  void emit_const(uint32_t dst, uint64_t k) {
    emit(Handler::Const);
    emit_u64(dst);
    emit_u64(k);
  }
  void mark(uint32_t wasm_offset);

  // The virtual operand stack.
  uint32_t canon(uint32_t height) const { return (out_.num_locals + height) * 8; }
  uint32_t height() const { return static_cast<uint32_t>(stack_.size()); }
  void push(Entry e) {
    stack_.push_back(e);
    max_height_ = std::max(max_height_, height());
  }
  void push_stack() { push(Entry{}); }
  Operand pop();
  uint32_t pop_slot(); // materializes a constant into its canonical slot
  void push_pending(Pending p);
  void emit_pending(const Pending& p, uint32_t dst);
  void flush_pending();
  void materialize_all();
  void materialize_local_refs(uint32_t local_slot);
  bool consumes_pending(const wasm::Instr& in) const;

  // Control.
  void block_arity(const wasm::BlockType& bt, uint32_t& params, uint32_t& results) const;
  Ctrl& label(uint32_t depth) { return ctrl_[ctrl_.size() - 1 - depth]; }
  // A branch handler, or its back-edge twin when `target` is a loop (the
  // twin polls the checkpoint flag itself; emit_label_target then aims past
  // the loop's Poll).
  void emit_branch(Handler h, const Ctrl* target);
  void emit_label_target(Ctrl& target, bool branch_polls = true);
  bool needs_copy(const Ctrl& target) const {
    uint32_t n = target.label_arity();
    return n > 0 && height() - n != target.base;
  }
  void emit_copies(const Ctrl& target);
  // Pops a branch condition; emits a branch taken when it is non-zero (or
  // zero, if `negate`), to `target` or to a fixup appended to `fixups`.
  struct Cond {
    std::optional<Pending> compare;
    Operand value;
  };
  Cond pop_cond();
  void emit_cond_branch(const Cond& c, bool negate, Ctrl* target, std::vector<uint32_t>* fixups);
  void emit_return();
  void record_point(wasm::StablePointKind kind, uint32_t wasm_offset, uint32_t code_index,
                    uint32_t resume_index, uint32_t stack_height, uint32_t args_height);

  // Instructions.
  void translate(const wasm::Instr& in);
  void translate_skipped(const wasm::Instr& in);
  void on_block(const wasm::Instr& in);
  void on_loop(const wasm::Instr& in);
  void on_if(const wasm::Instr& in);
  void on_else();
  void on_end();
  void on_br(uint32_t depth);
  void on_br_if(uint32_t depth);
  void on_br_table(const wasm::Instr& in);
  void on_call(const wasm::Instr& in);
  void on_call_indirect(const wasm::Instr& in);
  void on_local_set(uint32_t index, bool tee);
  void on_binary(const wasm::Instr& in);
  void on_unary(const wasm::Instr& in);
  void on_load_of_sum(const wasm::Instr& in);
  bool pending_is_sum() const { return pending_ && pending_->op == Op::I32Add; }
  void on_store(const wasm::Instr& in);
  void on_memory_bulk(Handler h, const wasm::Instr& in);
  void on_table_set(const wasm::Instr& in);
  void on_table_fill(const wasm::Instr& in);
  void on_table_bulk(const wasm::Instr& in);
  void on_atomic(const wasm::Instr& in);

  const wasm::Module& module_;
  const wasm::Function& fn_;
  const wasm::FuncType& type_;
  const std::vector<uint32_t>& type_ids_;
  const void* const* handlers_;

  CompiledFunction out_;
  std::vector<Entry> stack_;
  std::vector<Ctrl> ctrl_;
  std::optional<Pending> pending_;
  std::vector<uint32_t> relocs_; // words holding code indices of targets
  uint32_t max_height_ = 0;
  static constexpr uint32_t kNone = ~0u;
  uint32_t last_mov_ = kNone; // code index of a Mov that may still become Mov2
  uint32_t current_offset_ = 0;
  bool dead_ = false;       // the rest of the current block is unreachable
  uint32_t dead_depth_ = 0; // blocks opened inside dead code
};

void Translator::mark(uint32_t wasm_offset) {
  auto& offs = out_.offsets;
  if (!offs.empty() && offs.back().first == here())
    offs.back().second = wasm_offset;
  else
    offs.emplace_back(here(), wasm_offset);
}

Translator::Operand Translator::pop() {
  Entry e = stack_.back();
  stack_.pop_back();
  switch (e.kind) {
  case Entry::Kind::Stack:
    return {false, canon(height()), 0};
  case Entry::Kind::Local:
    return {false, e.slot, 0};
  case Entry::Kind::Const:
    return {true, 0, e.k};
  }
  return {};
}

uint32_t Translator::pop_slot() {
  Operand o = pop();
  if (!o.is_const) return o.slot;
  uint32_t slot = canon(height());
  emit_const(slot, o.k);
  return slot;
}

void Translator::push_pending(Pending p) {
  p.wasm_offset = current_offset_;
  push_stack();
  pending_ = p;
}

void Translator::emit_pending(const Pending& p, uint32_t dst) {
  mark(p.wasm_offset);
  emit(p.handler);
  emit_u64(pack(dst, p.a));
  if (p.has_w2) emit_u64(p.w2);
  if (p.has_w3) emit_u64(p.w3);
  mark(current_offset_);
}

void Translator::flush_pending() {
  if (!pending_) return;
  Pending p = *pending_;
  pending_.reset();
  emit_pending(p, canon(height() - 1));
}

void Translator::materialize_all() {
  flush_pending();
  for (uint32_t i = 0; i < height(); ++i) {
    Entry& e = stack_[i];
    if (e.kind == Entry::Kind::Local) emit_mov(canon(i), e.slot);
    if (e.kind == Entry::Kind::Const) emit_const(canon(i), e.k);
    e.kind = Entry::Kind::Stack;
  }
}

void Translator::materialize_local_refs(uint32_t local_slot) {
  for (uint32_t i = 0; i < height(); ++i) {
    Entry& e = stack_[i];
    if (e.kind == Entry::Kind::Local && e.slot == local_slot) {
      emit_mov(canon(i), e.slot);
      e.kind = Entry::Kind::Stack;
    }
  }
}

bool Translator::consumes_pending(const wasm::Instr& in) const {
  if (maps().load[size_t(in.op)]) return pending_is_sum();
  switch (in.op) {
  case Op::LocalSet:
  case Op::LocalTee:
    return true;
  case Op::BrIf:
  case Op::If:
  case Op::I32Eqz:
    return pending_->compare != nullptr;
  case Op::Return:
    return type_.results.size() == 1;
  case Op::End:
    return ctrl_.size() == 1 && type_.results.size() == 1;
  default:
    return false;
  }
}

void Translator::block_arity(const wasm::BlockType& bt, uint32_t& params, uint32_t& results) const {
  switch (bt.kind) {
  case wasm::BlockType::Kind::Empty:
    params = results = 0;
    break;
  case wasm::BlockType::Kind::Value:
    params = 0;
    results = 1;
    break;
  case wasm::BlockType::Kind::TypeIndex: {
    const wasm::FuncType& t = module_.types[bt.type_index];
    params = static_cast<uint32_t>(t.params.size());
    results = static_cast<uint32_t>(t.results.size());
    break;
  }
  }
}

void Translator::emit_branch(Handler h, const Ctrl* target) {
  emit(target && target->kind == Op::Loop ? maps().back_edge[size_t(h)] : h);
}

void Translator::emit_label_target(Ctrl& target, bool branch_polls) {
  if (target.kind == Op::Loop)
    emit_target(branch_polls ? target.loop_start + 1 : target.loop_start);
  else
    emit_fixup(target.end_fixups);
}

void Translator::emit_copies(const Ctrl& target) {
  uint32_t n = target.label_arity();
  // Destinations never lie above their sources, so ascending order is safe.
  for (uint32_t i = 0; i < n; ++i) emit_mov(canon(target.base + i), canon(height() - n + i));
}

Translator::Cond Translator::pop_cond() {
  Cond c;
  if (pending_ && pending_->compare) {
    c.compare = pending_;
    pending_.reset();
    stack_.pop_back();
    return c;
  }
  c.value = pop();
  return c;
}

void Translator::emit_cond_branch(const Cond& c, bool negate, Ctrl* target,
                                  std::vector<uint32_t>* fixups) {
  auto emit_dest = [&] {
    if (target)
      emit_label_target(*target);
    else
      emit_fixup(*fixups);
  };
  if (c.compare) {
    const Pending& p = *c.compare;
    const CompareFacts* f = negate ? compare_facts(p.compare->inverted) : p.compare;
    mark(p.wasm_offset);
    emit_branch(p.rhs_is_imm ? f->branch_si : f->branch_ss, target);
    if (p.rhs_is_imm) {
      emit_u64(p.a);
      emit_u64(p.w2);
    } else {
      emit_u64(pack(p.a, static_cast<uint32_t>(p.w2)));
    }
    emit_dest();
    mark(current_offset_);
    return;
  }
  if (c.value.is_const) {
    bool taken = (static_cast<uint32_t>(c.value.k) != 0) != negate;
    if (!taken) return;
    emit_branch(Handler::Br, target);
    emit_dest();
    return;
  }
  emit_branch(negate ? Handler::BrIfZ : Handler::BrIfNz, target);
  emit_u64(c.value.slot);
  emit_dest();
}

void Translator::record_point(wasm::StablePointKind kind, uint32_t wasm_offset, uint32_t code_index,
                              uint32_t resume_index, uint32_t stack_height, uint32_t args_height) {
  CodePoint p;
  p.wasm_offset = wasm_offset;
  p.kind = kind;
  p.code_index = code_index;
  p.resume_index = resume_index;
  p.stack_height = stack_height;
  p.args_slot = out_.num_locals + args_height;
  out_.points.push_back(p);
}

void Translator::emit_return() {
  uint32_t n = static_cast<uint32_t>(type_.results.size());
  if (n == 1 && pending_) {
    Pending p = *pending_;
    pending_.reset();
    stack_.pop_back();
    emit_pending(p, 0);
  } else if (n == 1) {
    Operand o = pop();
    if (o.is_const)
      emit_const(0, o.k);
    else
      emit_mov(0, o.slot);
  } else {
    materialize_all();
    for (uint32_t i = 0; i < n; ++i) emit_mov(i * 8, canon(height() - n + i));
  }
  emit(Handler::Ret);
}

void Translator::on_block(const wasm::Instr& in) {
  materialize_all();
  Ctrl c;
  c.kind = Op::Block;
  block_arity(in.block, c.num_params, c.num_results);
  c.base = height() - c.num_params;
  ctrl_.push_back(std::move(c));
}

void Translator::on_loop(const wasm::Instr& in) {
  materialize_all();
  Ctrl c;
  c.kind = Op::Loop;
  block_arity(in.block, c.num_params, c.num_results);
  c.base = height() - c.num_params;
  c.loop_start = here();
  record_point(wasm::StablePointKind::LoopHeader, in.offset, here(), here(), height(), height());
  emit(Handler::Poll);
  ctrl_.push_back(std::move(c));
}

void Translator::on_if(const wasm::Instr& in) {
  Cond cond = pop_cond();
  materialize_all();
  Ctrl c;
  c.kind = Op::If;
  block_arity(in.block, c.num_params, c.num_results);
  c.base = height() - c.num_params;
  std::vector<uint32_t> else_branch;
  emit_cond_branch(cond, /*negate=*/true, nullptr, &else_branch);
  if (!else_branch.empty()) c.else_fixup = else_branch.front();
  // A constant-true condition emits no branch: the else arm is unreachable
  // by construction but still translated (it is simply never entered).
  ctrl_.push_back(std::move(c));
}

void Translator::on_else() {
  Ctrl& c = ctrl_.back();
  if (!dead_) {
    materialize_all();
    emit(Handler::Br);
    emit_fixup(c.end_fixups);
  }
  if (c.else_fixup) bind(*c.else_fixup, here());
  c.else_fixup.reset();
  c.kind = Op::Block; // the rest behaves like a block
  stack_.resize(c.base);
  for (uint32_t i = 0; i < c.num_params; ++i) push_stack();
  dead_ = false;
}

void Translator::on_end() {
  if (ctrl_.size() == 1) { // the function body
    if (!dead_) emit_return();
    Ctrl& c = ctrl_.back();
    for (uint32_t w : c.end_fixups) bind(w, here());
    if (!c.end_fixups.empty()) { // branches to the function label return
      stack_.resize(c.base);
      for (uint32_t i = 0; i < c.num_results; ++i) push_stack();
      dead_ = false;
      emit_return();
    }
    ctrl_.pop_back();
    return;
  }
  Ctrl c = std::move(ctrl_.back());
  ctrl_.pop_back();
  bool live = !dead_;
  if (live) materialize_all();
  if (c.else_fixup) { // `if` without `else`: the false path falls through
    bind(*c.else_fixup, here());
    live = true;
  }
  for (uint32_t w : c.end_fixups) bind(w, here());
  if (!c.end_fixups.empty()) live = true;
  stack_.resize(c.base);
  for (uint32_t i = 0; i < c.num_results; ++i) push_stack();
  dead_ = !live;
}

void Translator::on_br(uint32_t depth) {
  materialize_all();
  Ctrl& target = label(depth);
  emit_copies(target);
  emit_branch(Handler::Br, &target);
  emit_label_target(target);
  dead_ = true;
}

void Translator::on_br_if(uint32_t depth) {
  Cond cond = pop_cond();
  materialize_all();
  Ctrl& target = label(depth);
  if (!needs_copy(target)) {
    emit_cond_branch(cond, /*negate=*/false, &target, nullptr);
    return;
  }
  std::vector<uint32_t> skip;
  emit_cond_branch(cond, /*negate=*/true, nullptr, &skip);
  emit_copies(target);
  emit_branch(Handler::Br, &target);
  emit_label_target(target);
  for (uint32_t w : skip) bind(w, here());
}

void Translator::on_br_table(const wasm::Instr& in) {
  uint32_t index = pop_slot();
  materialize_all();
  uint32_t count = static_cast<uint32_t>(in.targets.size() - 1);
  emit(Handler::BrTable);
  emit_u64(pack(index, count));
  std::vector<std::pair<uint32_t, uint32_t>> stubs; // (word, depth)
  for (uint32_t depth : in.targets) {
    Ctrl& target = label(depth);
    if (needs_copy(target)) {
      stubs.emplace_back(here(), depth);
      emit_u64(0);
    } else {
      emit_label_target(target, /*branch_polls=*/false); // a loop's own Poll runs
    }
  }
  for (auto [word, depth] : stubs) {
    bind(word, here());
    Ctrl& target = label(depth);
    emit_copies(target);
    emit_branch(Handler::Br, &target);
    emit_label_target(target);
  }
  dead_ = true;
}

void Translator::on_call(const wasm::Instr& in) {
  materialize_all();
  const wasm::FuncType& callee = module_.func_type(in.a);
  uint32_t args = height() - static_cast<uint32_t>(callee.params.size());
  uint32_t at = here();
  record_point(wasm::StablePointKind::CallSite, in.offset, at, at + 2, args, args);
  emit(Handler::Call);
  emit_u64(pack(in.a, canon(args)));
  stack_.resize(args);
  for (size_t i = 0; i < callee.results.size(); ++i) push_stack();
}

void Translator::on_call_indirect(const wasm::Instr& in) {
  materialize_all();
  const wasm::FuncType& callee = module_.types[in.a];
  uint32_t index_slot = canon(height() - 1);
  uint32_t args = height() - 1 - static_cast<uint32_t>(callee.params.size());
  uint32_t at = here();
  record_point(wasm::StablePointKind::CallSite, in.offset, at, at + 3, args, args);
  emit(Handler::CallIndirect);
  emit_u64(pack(type_ids_[in.a], in.b));
  emit_u64(pack(index_slot, canon(args)));
  stack_.resize(args);
  for (size_t i = 0; i < callee.results.size(); ++i) push_stack();
}

void Translator::on_local_set(uint32_t index, bool tee) {
  uint32_t slot = index * 8;
  if (pending_) {
    Pending p = *pending_;
    pending_.reset();
    stack_.pop_back();
    materialize_local_refs(slot);
    emit_pending(p, slot);
    if (tee) push(Entry{Entry::Kind::Local, slot, 0});
    return;
  }
  Entry e = stack_.back();
  stack_.pop_back();
  materialize_local_refs(slot);
  switch (e.kind) {
  case Entry::Kind::Stack:
    emit_mov(slot, canon(height()));
    break;
  case Entry::Kind::Local:
    emit_mov(slot, e.slot);
    break;
  case Entry::Kind::Const:
    emit_const(slot, e.k);
    break;
  }
  if (tee) push(e.kind == Entry::Kind::Const ? e : Entry{Entry::Kind::Local, slot, 0});
}

void Translator::on_binary(const wasm::Instr& in) {
  Op op = in.op;
  Operand b = pop();
  Operand a = pop();
  if (a.is_const && !b.is_const) {
    if (const CompareFacts* f = compare_facts(op)) {
      op = f->mirrored;
      std::swap(a, b);
    } else if (is_commutative(op)) {
      std::swap(a, b);
    }
  }
  uint32_t a_slot = a.slot;
  if (a.is_const) {
    a_slot = canon(height());
    emit_const(a_slot, a.k);
  }
  Pending p;
  p.a = a_slot;
  p.has_w2 = true;
  p.rhs_is_imm = b.is_const;
  p.w2 = b.is_const ? b.k : b.slot;
  p.handler = b.is_const ? maps().si[size_t(op)] : maps().ss[size_t(op)];
  p.compare = compare_facts(op);
  p.op = op;
  push_pending(p);
}

void Translator::on_unary(const wasm::Instr& in) {
  if (in.op == Op::I32Eqz && pending_ && pending_->compare) { // !(a < b) is a >= b
    const CompareFacts* inv = compare_facts(pending_->compare->inverted);
    pending_->compare = inv;
    pending_->handler =
        pending_->rhs_is_imm ? maps().si[size_t(inv->op)] : maps().ss[size_t(inv->op)];
    return;
  }
  Pending p;
  p.op = in.op;
  const wasm::OpInfo& info = wasm::op_info(in.op);
  if (info.imm == wasm::ImmKind::MemArg && stack_.back().kind == Entry::Kind::Const) {
    // A load from a constant address: [d] [address].
    p.handler = maps().absolute[size_t(in.op)];
    p.a = 0;
    p.has_w2 = true;
    p.w2 = uint64_t(static_cast<uint32_t>(stack_.back().k)) + in.imm;
    stack_.pop_back();
    push_pending(p);
    return;
  }
  p.handler = maps().one[size_t(in.op)];
  p.a = pop_slot();
  if (info.imm == wasm::ImmKind::MemArg) { // a load: [d|addr] [offset]
    p.has_w2 = true;
    p.w2 = in.imm;
  }
  push_pending(p);
}

// A load whose address is the i32.add just translated: one handler does the
// (wrapping) add and the access.
void Translator::on_load_of_sum(const wasm::Instr& in) {
  Pending sum = *pending_;
  pending_.reset();
  stack_.pop_back();
  Pending p;
  p.op = in.op;
  p.handler =
      sum.rhs_is_imm ? maps().load_add_si[size_t(in.op)] : maps().load_add_ss[size_t(in.op)];
  p.a = sum.a;
  p.has_w2 = p.has_w3 = true;
  p.w2 = sum.w2;
  p.w3 = in.imm;
  push_pending(p);
}

void Translator::translate_skipped(const wasm::Instr& in) {
  switch (in.op) {
  case Op::Block:
  case Op::Loop:
  case Op::If:
    ++dead_depth_;
    break;
  case Op::Else:
    if (dead_depth_ == 0) on_else();
    break;
  case Op::End:
    if (dead_depth_ == 0)
      on_end();
    else
      --dead_depth_;
    break;
  default:
    break;
  }
}

void Translator::translate(const wasm::Instr& in) {
  current_offset_ = in.offset;
  mark(in.offset);
  if (dead_) {
    translate_skipped(in);
    return;
  }
  if (pending_ && !consumes_pending(in)) flush_pending();
  // Every instruction, no default: one nobody handles does not compile.
  switch (in.op) {
#define WASM_BINARY(n) case Op::n:
#define WASM_UNARY(n)
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_ATOMIC(n)
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return on_binary(in);
#define WASM_BINARY(n)
#define WASM_UNARY(n) case Op::n:
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_ATOMIC(n)
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return on_unary(in);
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n) case Op::n:
#define WASM_STORE(n)
#define WASM_ATOMIC(n)
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return pending_is_sum() ? on_load_of_sum(in) : on_unary(in);
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n)
#define WASM_STORE(n) case Op::n:
#define WASM_ATOMIC(n)
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return on_store(in);
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n)
#define WASM_STORE(n)
#define WASM_ATOMIC(n) case Op::n:
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
    return on_atomic(in);
  case Op::Nop:
    return;
  case Op::Unreachable:
    emit(Handler::Unreachable);
    dead_ = true;
    return;
  case Op::Block:
    return on_block(in);
  case Op::Loop:
    return on_loop(in);
  case Op::If:
    return on_if(in);
  case Op::Else:
    return on_else();
  case Op::End:
    return on_end();
  case Op::Br:
    return on_br(in.a);
  case Op::BrIf:
    return on_br_if(in.a);
  case Op::BrTable:
    return on_br_table(in);
  case Op::Return:
    emit_return();
    dead_ = true;
    return;
  case Op::Call:
    return on_call(in);
  case Op::CallIndirect:
    return on_call_indirect(in);
  case Op::Drop:
    stack_.pop_back();
    return;
  case Op::Select:
  case Op::SelectT: {
    uint32_t cond = pop_slot();
    uint32_t b = pop_slot();
    uint32_t a = pop_slot();
    push_pending(Pending{Handler::Select, a, true, pack(b, cond)});
    return;
  }
  case Op::LocalGet:
    push(Entry{Entry::Kind::Local, in.a * 8, 0});
    return;
  case Op::LocalSet:
    return on_local_set(in.a, false);
  case Op::LocalTee:
    return on_local_set(in.a, true);
  case Op::GlobalGet:
    push_pending(Pending{Handler::GlobalGet, in.a});
    return;
  case Op::GlobalSet: {
    uint32_t v = pop_slot();
    emit(Handler::GlobalSet);
    emit_u64(pack(in.a, v));
    return;
  }
  case Op::I32Const:
  case Op::I64Const:
  case Op::F32Const:
  case Op::F64Const:
    push(Entry{Entry::Kind::Const, 0, in.imm});
    return;
  case Op::RefNull:
    push(Entry{Entry::Kind::Const, 0, 0});
    return;
  case Op::RefIsNull:
    push_pending(Pending{Handler::RefIsNull, pop_slot()});
    return;
  case Op::RefFunc:
    push_pending(Pending{Handler::RefFunc, in.a});
    return;
  case Op::MemorySize:
    push_pending(Pending{Handler::MemorySize, 0});
    return;
  case Op::MemoryGrow:
    push_pending(Pending{Handler::MemoryGrow, pop_slot()});
    return;
  case Op::MemoryFill:
    return on_memory_bulk(Handler::MemoryFill, in);
  case Op::MemoryCopy:
    return on_memory_bulk(Handler::MemoryCopy, in);
  case Op::MemoryInit:
    return on_memory_bulk(Handler::MemoryInit, in);
  case Op::DataDrop:
    emit(Handler::DataDrop);
    emit_u64(in.a);
    return;
  case Op::TableGet:
    push_pending(Pending{Handler::TableGet, pop_slot(), true, in.a});
    return;
  case Op::TableSet:
    return on_table_set(in);
  case Op::TableSize:
    push_pending(Pending{Handler::TableSize, in.a});
    return;
  case Op::TableGrow: {
    uint32_t delta = pop_slot();
    uint32_t init = pop_slot();
    push_pending(Pending{Handler::TableGrow, init, true, pack(delta, in.a)});
    return;
  }
  case Op::TableFill:
    return on_table_fill(in);
  case Op::TableCopy:
  case Op::TableInit:
    return on_table_bulk(in);
  case Op::ElemDrop:
    emit(Handler::ElemDrop);
    emit_u64(in.a);
    return;
  case Op::AtomicFence:
    emit(Handler::AtomicFence);
    return;
  }
  throw InternalError(fmt::format("interpreter: instruction {} at offset 0x{:x} out of range",
                                  static_cast<unsigned>(in.op), in.offset));
}

void Translator::on_store(const wasm::Instr& in) {
  uint32_t value = pop_slot();
  if (stack_.back().kind == Entry::Kind::Const) { // [value] [address]
    uint64_t address = uint64_t(static_cast<uint32_t>(stack_.back().k)) + in.imm;
    stack_.pop_back();
    emit(maps().absolute[size_t(in.op)]);
    emit_u64(value);
    emit_u64(address);
    return;
  }
  uint32_t addr = pop_slot();
  emit(maps().one[size_t(in.op)]);
  emit_u64(pack(addr, value));
  emit_u64(in.imm);
}

// memory.fill, memory.copy, memory.init: [dst|src] [len] (init: [len|segment]).
void Translator::on_memory_bulk(Handler h, const wasm::Instr& in) {
  uint32_t n = pop_slot();
  uint32_t src = pop_slot(); // fill: the byte value
  uint32_t dst = pop_slot();
  emit(h);
  emit_u64(pack(dst, src));
  emit_u64(h == Handler::MemoryInit ? pack(n, in.a) : n);
}

void Translator::on_table_set(const wasm::Instr& in) {
  uint32_t v = pop_slot();
  uint32_t i = pop_slot();
  emit(Handler::TableSet);
  emit_u64(pack(i, v));
  emit_u64(in.a);
}

void Translator::on_table_fill(const wasm::Instr& in) {
  uint32_t n = pop_slot();
  uint32_t v = pop_slot();
  uint32_t i = pop_slot();
  emit(Handler::TableFill);
  emit_u64(pack(i, v));
  emit_u64(pack(n, in.a));
}

// table.copy and table.init: operands always in slots.
void Translator::on_table_bulk(const wasm::Instr& in) {
  uint32_t n = pop_slot();
  uint32_t src = pop_slot();
  uint32_t dst = pop_slot();
  bool copy = in.op == Op::TableCopy;
  emit(copy ? Handler::TableCopy : Handler::TableInit);
  emit_u64(pack(dst, src));
  emit_u64(copy ? uint64_t(n) : pack(n, in.a)); // init: elem segment
  emit_u64(copy ? pack(in.a, in.b) : uint64_t(in.b));
}

// Atomic accesses: [d|addr] [x|y] [offset], operands in slots; the result
// (all but stores have one) is held back like any producer's. A wait is a
// stable point (a checkpoint stops a thread blocked there): its operands
// are in their canonical slots and it is emitted at once, so the point's
// code index is its handler's.
void Translator::on_atomic(const wasm::Instr& in) {
  const wasm::OpInfo& info = wasm::op_info(in.op);
  const bool wait = in.op == Op::MemoryAtomicWait32 || in.op == Op::MemoryAtomicWait64;
  if (wait) materialize_all();
  size_t operands = 2; // cmpxchg, wait
  switch (info.sig) {
  case wasm::Sig::i_i:
  case wasm::Sig::i_l:
    operands = 0;
    break;
  case wasm::Sig::ii_v:
  case wasm::Sig::il_v:
  case wasm::Sig::ii_i:
  case wasm::Sig::il_l:
    operands = 1;
    break;
  default:
    break;
  }
  uint32_t y = operands == 2 ? pop_slot() : 0;
  uint32_t x = operands >= 1 ? pop_slot() : 0;
  uint32_t addr = pop_slot();
  Pending p{maps().atomic[size_t(in.op)], addr, true, pack(x, y), true, in.imm};
  p.op = in.op;
  if (!(info.sig != wasm::Sig::ii_v && info.sig != wasm::Sig::il_v)) { // a store
    emit(p.handler);
    emit_u64(pack(0, addr));
    emit_u64(p.w2);
    emit_u64(p.w3);
    return;
  }
  push_pending(p);
  if (wait) {
    const uint32_t with_operands = height() + 2; // the result replaced three operands
    record_point(wasm::StablePointKind::AtomicWait, in.offset, here(), here(), with_operands,
                 with_operands);
    flush_pending();
  }
}

CompiledFunction Translator::run() {
  const uint32_t zero_begin = out_.num_params * 8;
  const uint32_t zero_count = out_.num_locals - out_.num_params;
  record_point(wasm::StablePointKind::FunctionEntry, fn_.body_begin, 0, 0, 0, 0);
  emit(Handler::Entry);
  emit_u64(pack(zero_begin, zero_count));
  const uint32_t frame_word = here();
  emit_u64(0); // frame size, known at the end

  Ctrl body;
  body.num_results = static_cast<uint32_t>(type_.results.size());
  ctrl_.push_back(std::move(body));

  wasm::ByteReader bytes(std::span<const uint8_t>(module_.bytes)
                             .subspan(fn_.body_begin, fn_.body_end - fn_.body_begin),
                         fn_.body_begin);
  wasm::InstrReader reader(bytes);
  wasm::Instr in;
  while (!reader.at_end() && !ctrl_.empty()) {
    reader.next(in);
    translate(in);
  }

  // One spare slot: constants may be materialized just above the stack top.
  out_.frame_slots = out_.num_locals + max_height_ + 1;
  out_.code[frame_word].u64 = uint64_t(out_.frame_slots) * 8;
  for (uint32_t w : relocs_) out_.code[w].target = out_.code.data() + out_.code[w].u64;
  return std::move(out_);
}

} // namespace

uint32_t CompiledFunction::wasm_offset_at(uint32_t code_index) const {
  auto it = std::upper_bound(offsets.begin(), offsets.end(), code_index,
                             [](uint32_t v, const auto& p) { return v < p.first; });
  if (it == offsets.begin()) return offsets.empty() ? 0 : offsets.front().second;
  return std::prev(it)->second;
}

const CodePoint* CompiledFunction::point_at_code(uint32_t code_index) const {
  auto it = std::lower_bound(points.begin(), points.end(), code_index,
                             [](const CodePoint& p, uint32_t v) { return p.code_index < v; });
  return it != points.end() && it->code_index == code_index ? &*it : nullptr;
}

const CodePoint* CompiledFunction::point_resuming_at(uint32_t resume_index) const {
  for (const CodePoint& p : points)
    if (p.kind == wasm::StablePointKind::CallSite && p.resume_index == resume_index) return &p;
  return nullptr;
}

const CodePoint* CompiledFunction::point_at_wasm(uint32_t wasm_offset,
                                                 wasm::StablePointKind kind) const {
  for (const CodePoint& p : points)
    if (p.wasm_offset == wasm_offset && p.kind == kind) return &p;
  return nullptr;
}

CompiledModule::CompiledModule(const wasm::Module& module, std::vector<uint32_t> type_ids)
    : module_(module), type_ids_(std::move(type_ids)) {
  stub_.handler = handler_table()[size_t(Handler::Translate)];
  funcs.resize(module.functions.size());
  for (uint32_t i = 0; i < funcs.size(); ++i) {
    funcs[i].func_index = module.num_imported_funcs + i;
    funcs[i].entry_point = &stub_;
    funcs[i].owner = this;
  }
}

const CompiledFunction& translated(const CompiledFunction& f) {
  if (f.translated()) return f;
  const CompiledModule& m = *f.owner;
  // The functions are the module's own (funcs is not const): only the
  // pointer that reached here is.
  auto& slot = const_cast<CompiledFunction&>(f);
  slot = Translator(m.module_, f.func_index, m.type_ids_, handler_table()).run();
  slot.entry_point = slot.code.data();
  slot.owner = &m;
  return slot;
}

} // namespace tern::interp
