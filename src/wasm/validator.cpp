// WebAssembly 2.0 validation (without SIMD), following the algorithm of the
// spec's appendix: an operand stack of value types and a control stack of
// frames, with "Unknown" standing for the bottom type of unreachable code.
//
// Besides accepting or rejecting, body validation records what later stages
// key on (FunctionInfo): the maximum operand stack height and the exact
// operand stack types at every stable point of reachable code.
#include "wasm/validator.h"

#include "tern/error.h"

#include <algorithm>
#include <fmt/format.h>
#include <initializer_list>
#include <string_view>
#include <thread>
#include <vector>

namespace tern::wasm {
namespace {

// ----------------------------------------------------------------------------
// Static facts about instructions, built at compile time from opcodes.def so
// the per-instruction path is a table lookup.

struct FixedSig {
  bool special = false;
  uint8_t num_params = 0;
  ValType params[3] = {};
  bool has_result = false;
  ValType result = ValType::I32;
};

constexpr ValType sig_letter(char c) {
  switch (c) {
  case 'i':
    return ValType::I32;
  case 'l':
    return ValType::I64;
  case 'f':
    return ValType::F32;
  default:
    return ValType::F64; // 'd'
  }
}

// Parses a Sig enumerator name such as "ii_i" or "iii_v" ("v" = nothing).
constexpr FixedSig parse_sig(std::string_view name) {
  FixedSig sig;
  if (name == "Special") {
    sig.special = true;
    return sig;
  }
  size_t split = name.find('_');
  std::string_view in = name.substr(0, split);
  std::string_view out = name.substr(split + 1);
  if (in != "v")
    for (char c : in) sig.params[sig.num_params++] = sig_letter(c);
  if (out != "v") {
    sig.has_result = true;
    sig.result = sig_letter(out[0]);
  }
  return sig;
}

// Whether an instruction's immediates name something to check (a memory,
// table, segment) or are malformed in ways InstrReader lets through
// (check_immediates); constants and instructions without any need nothing.
constexpr bool immediates_to_check(ImmKind imm) {
  switch (imm) {
  case ImmKind::None:
  case ImmKind::I32:
  case ImmKind::I64:
  case ImmKind::F32:
  case ImmKind::F64:
    return false;
  default:
    return true;
  }
}

struct OpFacts {
  FixedSig sig;
  ImmKind imm;
  uint8_t access_bytes;
  bool check_immediates;
};

constexpr OpFacts kOpFacts[] = {
#define WASM_OP(name, text, prefix, code, imm, sig, bytes)                                         \
  OpFacts{parse_sig(#sig), ImmKind::imm, bytes, immediates_to_check(ImmKind::imm)},
#include "wasm/opcodes.def"
#undef WASM_OP
};

const OpFacts& facts(Op op) {
  return kOpFacts[static_cast<uint16_t>(op)];
}

// ----------------------------------------------------------------------------
// Types

// The bottom type of the polymorphic stack in unreachable code. Never a valid
// binary encoding, so it cannot collide with a real ValType.
constexpr ValType kUnknown = static_cast<ValType>(0);

using TypeList = std::span<const ValType>;

constexpr ValType kSingleTypes[] = {ValType::I32, ValType::I64,     ValType::F32,
                                    ValType::F64, ValType::FuncRef, ValType::ExternRef};

// Result types of a block type (t?) as a list of one, without allocating.
TypeList single(ValType t) {
  for (const ValType& s : kSingleTypes)
    if (s == t) return {&s, 1};
  return {};
}

// The stable-point stack types of a module grow with (stack height × number
// of calls), which hostile code could make quadratic in its size. Real code
// records a few values per point; the budget allows an average of 16 per
// code byte (a point takes at least 2 bytes) plus a fixed allowance.
constexpr size_t kStackTypesPerCodeByte = 16;
constexpr size_t kStackTypesAllowance = size_t(1) << 22;

// Function bodies of a module with this much code are validated on two
// threads: a thread costs ~0.1 ms, validating 1 MB ~5 ms of one core, and
// validation is on the way to every module's first instruction
// (docs/performance.md, "Time to first instruction").
constexpr size_t kParallelCodeBytes = size_t(256) << 10;

[[noreturn]] void invalid(uint32_t offset, const std::string& message) {
  throw ValidationError(offset, message);
}

// tern implements WebAssembly 2.0 without SIMD. The decoder refuses v128
// in a binary (wasm/proposals.h); this refuses it in a Module built
// otherwise, wherever a type appears.
void check_supported(ValType t, uint32_t offset) {
  if (t == ValType::V128)
    invalid(offset, "the SIMD proposal is not supported yet (value type v128)");
}

// Checks of instruction immediates that the spec classifies as "malformed"
// but InstrReader leaves to its callers; shared by validation and by the
// well-formedness scan of bodies.
//
// memory.init and data.drop need the data count section. An index that names
// no data segment at all is reported as invalid instead ("unknown data
// segment"): that is what the spec's text-format tests expect, and wabt
// converts them to binaries without a data count section.
void check_well_formed(const Module& m, const Instr& in) {
  ImmKind imm = facts(in.op).imm;
  if ((imm == ImmKind::MemArg || imm == ImmKind::AtomicMemArg) && in.align >= 32)
    throw DecodeError(in.offset, "malformed memop flags");
  if ((in.op == Op::MemoryInit || in.op == Op::DataDrop) && !m.data_count && in.a < m.datas.size())
    throw DecodeError(in.offset, "data count section required");
}

// C.datas: the data count section's count, else the data segments.
size_t data_segment_count(const Module& m) {
  return m.data_count ? *m.data_count : m.datas.size();
}

ByteReader body_reader(const Module& m, const Function& f) {
  if (f.body_begin > f.body_end || f.body_end > m.bytes.size())
    throw DecodeError(f.body_begin, "function body out of bounds");
  std::span<const uint8_t> bytes(m.bytes);
  return ByteReader(bytes.subspan(f.body_begin, f.body_end - f.body_begin), f.body_begin);
}

// ----------------------------------------------------------------------------
// Function bodies

struct CtrlFrame {
  Op op;            // Block (also the function's frame), Loop, If, Else
  TypeList params;  // start types
  TypeList results; // end types
  uint32_t height;  // operand stack height at entry (below the params)
  bool unreachable; // after br/br_table/return/unreachable in this frame
  bool dead;        // entered from unreachable code: never executed
  TypeList label_types() const { return op == Op::Loop ? params : results; }
};

// What function bodies may refer to beyond the Module itself, and what the
// functions validated with it recorded, in order: their stable points and
// operand types one after another, and how many of each every function has.
// They become the Module's pools and the spans of FunctionInfo once every
// function is valid (ModuleValidator::keep).
struct BodyContext {
  std::vector<uint8_t> declared_refs; // C.refs, indexed by function index
  size_t stack_types_budget = 0;      // left for stable-point records
  std::vector<StablePoint> points;
  std::vector<ValType> types;
  std::vector<std::pair<uint32_t, uint32_t>> counts; // (points, types) per function
};

class FunctionValidator {
public:
  FunctionValidator(const Module& m, BodyContext& ctx) : m_(m), ctx_(ctx) {}

  void validate(uint32_t func_index, Function& f);

private:
  void step(const Instr& in);
  void step_fixed(const Instr& in);
  void check_immediates(const Instr& in);
  void block_entry(const Instr& in);
  void else_(const Instr& in);
  void end(const Instr& in);
  void br_table(const Instr& in);
  void select(const Instr& in);
  void local(const Instr& in);
  void global(const Instr& in);
  void call(TypeList params, TypeList results);

  // Stack primitives of the spec's algorithm.
  void push(ValType t) { vals_.push_back(t); }
  void push(TypeList ts) { vals_.insert(vals_.end(), ts.begin(), ts.end()); }
  ValType pop();
  void pop(ValType expect);
  void pop(TypeList expect) {
    for (size_t i = expect.size(); i-- > 0;) pop(expect[i]);
  }
  void check_top(TypeList expect) const;
  void push_ctrl(Op op, TypeList params, TypeList results);
  void set_unreachable() {
    vals_.resize(ctrls_.back().height);
    ctrls_.back().unreachable = true;
  }

  // Lookups that reject out-of-range indices with the spec's messages.
  TypeList block_params(const BlockType& bt) const;
  TypeList block_results(const BlockType& bt) const;
  const CtrlFrame& label(uint32_t depth) const;
  const FuncType& type(uint32_t index) const;
  const TableType& table(uint32_t index) const;
  void memory(uint32_t index) const;
  ValType local_type(uint32_t index) const;

  void record(StablePointKind kind);
  [[noreturn]] void mismatch() const { invalid(offset_, "type mismatch"); }

  const Module& m_;
  BodyContext& ctx_;
  // Per function; the vectors keep their capacity across functions.
  std::vector<ValType> vals_;
  std::vector<CtrlFrame> ctrls_;
  Instr instr_;
  uint32_t offset_ = 0; // of the instruction being validated
  TypeList params_;
  std::span<const ValType> locals_;
  size_t types_begin_ = 0; // the function's first operand type in ctx_.types
};

void FunctionValidator::validate(uint32_t func_index, Function& f) {
  const FuncType& ft = m_.func_type(func_index);
  params_ = ft.params;
  locals_ = f.locals;
  for (ValType t : f.locals) check_supported(t, f.body_begin);
  const size_t points_begin = ctx_.points.size();
  types_begin_ = ctx_.types.size();
  ctx_.points.push_back({f.body_begin, StablePointKind::FunctionEntry, 0, 0});

  vals_.clear();
  ctrls_.clear();
  size_t max_height = 0;
  offset_ = f.body_begin;
  push_ctrl(Op::Block, {}, ft.results);
  InstrReader reader(body_reader(m_, f));
  while (!ctrls_.empty()) {
    if (reader.at_end()) throw DecodeError(f.body_end, "END opcode expected");
    reader.next(instr_);
    offset_ = instr_.offset;
    step(instr_);
    max_height = std::max(max_height, vals_.size());
  }
  if (!reader.at_end()) throw DecodeError(reader.offset(), "section size mismatch");
  f.info.max_stack_height = static_cast<uint32_t>(max_height);
  ctx_.counts.emplace_back(static_cast<uint32_t>(ctx_.points.size() - points_begin),
                           static_cast<uint32_t>(ctx_.types.size() - types_begin_));
}

void FunctionValidator::step(const Instr& in) {
  switch (in.op) {
  case Op::Unreachable:
    set_unreachable();
    return;
  case Op::Block:
  case Op::Loop:
  case Op::If:
    block_entry(in);
    return;
  case Op::Else:
    else_(in);
    return;
  case Op::End:
    end(in);
    return;
  case Op::Br: {
    pop(label(in.a).label_types());
    set_unreachable();
    return;
  }
  case Op::BrIf: {
    pop(ValType::I32);
    TypeList types = label(in.a).label_types();
    pop(types);
    push(types);
    return;
  }
  case Op::BrTable:
    br_table(in);
    return;
  case Op::Return:
    pop(ctrls_.front().results);
    set_unreachable();
    return;
  case Op::Call: {
    if (in.a >= m_.func_types.size()) invalid(offset_, fmt::format("unknown function {}", in.a));
    const FuncType& ft = m_.func_type(in.a);
    call(ft.params, ft.results);
    return;
  }
  case Op::CallIndirect: {
    const TableType& tt = table(in.b);
    const FuncType& ft = type(in.a);
    if (tt.elem != ValType::FuncRef) mismatch();
    record(StablePointKind::CallSite);
    pop(ValType::I32);
    pop(ft.params);
    push(ft.results);
    return;
  }
  case Op::Drop:
    pop();
    return;
  case Op::Select:
  case Op::SelectT:
    select(in);
    return;
  case Op::LocalGet:
  case Op::LocalSet:
  case Op::LocalTee:
    local(in);
    return;
  case Op::GlobalGet:
  case Op::GlobalSet:
    global(in);
    return;
  case Op::TableGet: {
    ValType elem = table(in.a).elem;
    pop(ValType::I32);
    push(elem);
    return;
  }
  case Op::TableSet: {
    ValType elem = table(in.a).elem;
    pop(elem);
    pop(ValType::I32);
    return;
  }
  case Op::TableGrow: {
    ValType elem = table(in.a).elem;
    pop(ValType::I32);
    pop(elem);
    push(ValType::I32);
    return;
  }
  case Op::TableFill: {
    ValType elem = table(in.a).elem;
    pop(ValType::I32);
    pop(elem);
    pop(ValType::I32);
    return;
  }
  case Op::TableCopy: {
    if (table(in.a).elem != table(in.b).elem) mismatch();
    pop(ValType::I32);
    pop(ValType::I32);
    pop(ValType::I32);
    return;
  }
  case Op::RefNull:
    push(in.type);
    return;
  case Op::RefIsNull: {
    ValType t = pop();
    if (t != kUnknown && !is_ref(t)) mismatch();
    push(ValType::I32);
    return;
  }
  case Op::RefFunc:
    if (in.a >= m_.func_types.size()) invalid(offset_, fmt::format("unknown function {}", in.a));
    if (!ctx_.declared_refs[in.a]) invalid(offset_, "undeclared function reference");
    push(ValType::FuncRef);
    return;
    // The Sig column of opcodes.def says all there is to check of these.
#define WASM_BINARY(n) case Op::n:
#define WASM_UNARY(n) case Op::n:
#define WASM_LOAD(n) case Op::n:
#define WASM_STORE(n) case Op::n:
#define WASM_ATOMIC(n) case Op::n:
#define WASM_OTHER(n)
#include "wasm/op_classes.def"
  case Op::AtomicFence:
  case Op::Nop:
  case Op::I32Const:
  case Op::I64Const:
  case Op::F32Const:
  case Op::F64Const:
  case Op::MemorySize:
  case Op::MemoryGrow:
  case Op::MemoryFill:
  case Op::MemoryCopy:
  case Op::MemoryInit:
  case Op::DataDrop:
  case Op::TableSize:
  case Op::TableInit:
  case Op::ElemDrop:
    step_fixed(in);
    return;
  }
  invalid(offset_, "unknown instruction");
}

// Instructions with a fixed signature (the Sig column of opcodes.def).
void FunctionValidator::step_fixed(const Instr& in) {
  const OpFacts& f = facts(in.op);
  if (f.check_immediates) check_immediates(in);
  // A thread blocked in a wait can be checkpointed there.
  if (in.op == Op::MemoryAtomicWait32 || in.op == Op::MemoryAtomicWait64)
    record(StablePointKind::AtomicWait);
  for (size_t i = f.sig.num_params; i-- > 0;) pop(f.sig.params[i]);
  if (f.sig.has_result) push(f.sig.result);
}

void FunctionValidator::check_immediates(const Instr& in) {
  check_well_formed(m_, in);
  switch (facts(in.op).imm) {
  case ImmKind::MemArg:
    memory(0);
    if ((uint64_t(1) << in.align) > facts(in.op).access_bytes)
      invalid(offset_, "alignment must not be larger than natural");
    return;
  case ImmKind::AtomicMemArg:
    // Atomic accesses name their natural alignment exactly (the threads
    // proposal); an unaligned address traps at run time instead.
    memory(0);
    if ((uint64_t(1) << in.align) != facts(in.op).access_bytes)
      invalid(offset_, "alignment must be equal to natural alignment");
    return;
  case ImmKind::Mem:
  case ImmKind::MemCopy:
    memory(0);
    return;
  case ImmKind::MemInit:
  case ImmKind::Data:
    if (in.op == Op::MemoryInit) memory(0);
    if (in.a >= data_segment_count(m_))
      invalid(offset_, fmt::format("unknown data segment {}", in.a));
    return;
  case ImmKind::TableInit: {
    ValType table_elem = table(in.b).elem;
    if (in.a >= m_.elems.size()) invalid(offset_, fmt::format("unknown elem segment {}", in.a));
    if (m_.elems[in.a].type != table_elem) mismatch();
    return;
  }
  case ImmKind::Elem:
    if (in.a >= m_.elems.size()) invalid(offset_, fmt::format("unknown elem segment {}", in.a));
    return;
  case ImmKind::Table:
    table(in.a);
    return;
  case ImmKind::None: // nothing beyond the instruction's signature
  case ImmKind::I32:
  case ImmKind::I64:
  case ImmKind::F32:
  case ImmKind::F64:
  case ImmKind::Block: // the rest belong to instructions step() handles itself
  case ImmKind::Label:
  case ImmKind::BrTable:
  case ImmKind::Func:
  case ImmKind::CallIndirect:
  case ImmKind::Local:
  case ImmKind::Global:
  case ImmKind::RefType:
  case ImmKind::SelectT:
  case ImmKind::TableCopy:
  case ImmKind::Zero: // atomic.fence
    return;
  }
}

void FunctionValidator::block_entry(const Instr& in) {
  TypeList params = block_params(in.block);
  TypeList results = block_results(in.block);
  if (in.op == Op::Loop) record(StablePointKind::LoopHeader);
  if (in.op == Op::If) pop(ValType::I32);
  pop(params);
  push_ctrl(in.op, params, results);
}

void FunctionValidator::else_(const Instr& in) {
  CtrlFrame& frame = ctrls_.back();
  // A stray `else` is a decoding error in the spec's binary grammar.
  if (frame.op != Op::If) throw DecodeError(in.offset, "END opcode expected");
  pop(frame.results);
  if (vals_.size() != frame.height) mismatch();
  frame.op = Op::Else;
  frame.unreachable = false;
  push(frame.params);
}

void FunctionValidator::end(const Instr&) {
  const CtrlFrame& frame = ctrls_.back();
  pop(frame.results);
  if (vals_.size() != frame.height) mismatch();
  // An `if` without `else` has an empty else branch: [t1*] -> [t2*] needs t1* = t2*.
  if (frame.op == Op::If && !std::ranges::equal(frame.params, frame.results)) mismatch();
  TypeList results = frame.results;
  ctrls_.pop_back();
  push(results);
}

void FunctionValidator::br_table(const Instr& in) {
  pop(ValType::I32);
  const std::vector<uint32_t>& targets = in.targets; // the default is last
  size_t arity = label(targets.back()).label_types().size();
  for (size_t i = 0; i + 1 < targets.size(); ++i) {
    TypeList types = label(targets[i]).label_types();
    if (types.size() != arity) mismatch();
    check_top(types);
  }
  pop(label(targets.back()).label_types());
  set_unreachable();
}

void FunctionValidator::select(const Instr& in) {
  if (in.op == Op::SelectT) {
    if (in.select_arity != 1) invalid(offset_, "invalid result arity");
    check_supported(in.type, offset_);
    pop(ValType::I32);
    pop(in.type);
    pop(in.type);
    push(in.type);
    return;
  }
  pop(ValType::I32);
  ValType t1 = pop();
  ValType t2 = pop();
  // Untyped select is for numeric operands only.
  if ((t1 != kUnknown && !is_num(t1)) || (t2 != kUnknown && !is_num(t2))) mismatch();
  if (t1 != t2 && t1 != kUnknown && t2 != kUnknown) mismatch();
  push(t1 == kUnknown ? t2 : t1);
}

void FunctionValidator::local(const Instr& in) {
  ValType t = local_type(in.a);
  switch (in.op) {
  case Op::LocalGet:
    push(t);
    return;
  case Op::LocalSet:
    pop(t);
    return;
  default: // local.tee
    pop(t);
    push(t);
    return;
  }
}

void FunctionValidator::global(const Instr& in) {
  if (in.a >= m_.global_types.size()) invalid(offset_, fmt::format("unknown global {}", in.a));
  const GlobalType& g = m_.global_types[in.a];
  if (in.op == Op::GlobalGet) {
    push(g.type);
    return;
  }
  if (!g.mut) invalid(offset_, "global is immutable");
  pop(g.type);
}

void FunctionValidator::call(TypeList params, TypeList results) {
  record(StablePointKind::CallSite);
  pop(params);
  push(results);
}

inline ValType FunctionValidator::pop() {
  const CtrlFrame& frame = ctrls_.back();
  if (vals_.size() == frame.height) {
    if (frame.unreachable) return kUnknown;
    mismatch();
  }
  ValType t = vals_.back();
  vals_.pop_back();
  return t;
}

inline void FunctionValidator::pop(ValType expect) {
  const CtrlFrame& frame = ctrls_.back();
  if (vals_.size() == frame.height) {
    if (!frame.unreachable) mismatch();
    return;
  }
  ValType actual = vals_.back();
  vals_.pop_back();
  if (actual != expect && actual != kUnknown) mismatch();
}

// Whether the stack ends with `expect`, without changing it (a pop followed
// by a push of the same values; polymorphic positions match anything).
void FunctionValidator::check_top(TypeList expect) const {
  const CtrlFrame& frame = ctrls_.back();
  size_t available = vals_.size() - frame.height;
  for (size_t i = 0; i < expect.size(); ++i) {
    ValType want = expect[expect.size() - 1 - i];
    if (i >= available) {
      if (!frame.unreachable) mismatch();
      return;
    }
    ValType actual = vals_[vals_.size() - 1 - i];
    if (actual != want && actual != kUnknown) mismatch();
  }
}

void FunctionValidator::push_ctrl(Op op, TypeList params, TypeList results) {
  bool dead = !ctrls_.empty() && (ctrls_.back().dead || ctrls_.back().unreachable);
  ctrls_.push_back({op, params, results, static_cast<uint32_t>(vals_.size()), false, dead});
  push(params);
}

TypeList FunctionValidator::block_params(const BlockType& bt) const {
  if (bt.kind != BlockType::Kind::TypeIndex) return {};
  return type(bt.type_index).params;
}

TypeList FunctionValidator::block_results(const BlockType& bt) const {
  switch (bt.kind) {
  case BlockType::Kind::Empty:
    return {};
  case BlockType::Kind::Value:
    check_supported(bt.value, offset_);
    return single(bt.value);
  default:
    return type(bt.type_index).results;
  }
}

const CtrlFrame& FunctionValidator::label(uint32_t depth) const {
  if (depth >= ctrls_.size()) invalid(offset_, fmt::format("unknown label {}", depth));
  return ctrls_[ctrls_.size() - 1 - depth];
}

const FuncType& FunctionValidator::type(uint32_t index) const {
  if (index >= m_.types.size()) invalid(offset_, fmt::format("unknown type {}", index));
  return m_.types[index];
}

const TableType& FunctionValidator::table(uint32_t index) const {
  if (index >= m_.tables.size()) invalid(offset_, fmt::format("unknown table {}", index));
  return m_.tables[index];
}

void FunctionValidator::memory(uint32_t index) const {
  if (index >= m_.memories.size()) invalid(offset_, fmt::format("unknown memory {}", index));
}

ValType FunctionValidator::local_type(uint32_t index) const {
  if (index < params_.size()) return params_[index];
  size_t declared = index - params_.size();
  if (declared >= locals_.size()) invalid(offset_, fmt::format("unknown local {}", index));
  return locals_[declared];
}

// Records a stable point at the current instruction with the operand stack
// as it is before the instruction. Code that can never run has none.
void FunctionValidator::record(StablePointKind kind) {
  const CtrlFrame& frame = ctrls_.back();
  if (frame.unreachable || frame.dead) return;
  std::vector<ValType>& pool = ctx_.types;
  if (vals_.size() > ctx_.stack_types_budget)
    invalid(offset_, "code too complex: operand stacks at stable points exceed the limit");
  ctx_.stack_types_budget -= vals_.size();
  ctx_.points.push_back({offset_, kind, static_cast<uint32_t>(vals_.size()),
                         static_cast<uint32_t>(pool.size() - types_begin_)});
  pool.insert(pool.end(), vals_.begin(), vals_.end());
}

// ----------------------------------------------------------------------------
// Module-level rules

class ModuleValidator {
public:
  explicit ModuleValidator(Module& m) : m_(m) {}
  void validate();

private:
  void types();
  void imports();
  void tables();
  void memories();
  void globals();
  void elems();
  void datas();
  void start();
  void exports();
  void functions();
  void validate_functions(size_t begin, size_t end, BodyContext& ctx);
  bool functions_in_parallel(size_t code_bytes);
  void keep(std::initializer_list<BodyContext*> parts);
  void collect_declared_refs();

  // Validates a constant expression of type `expect`.
  void const_expr(const ConstExpr& e, ValType expect);
  void func_index(uint32_t index, uint32_t offset) const {
    if (index >= m_.func_types.size()) invalid(offset, fmt::format("unknown function {}", index));
  }
  void limits(const Limits& l, uint64_t bound, const char* too_large) const;

  Module& m_;
  BodyContext ctx_;
};

void ModuleValidator::validate() {
  types();
  imports();
  tables();
  memories();
  globals();
  collect_declared_refs();
  elems();
  datas();
  start();
  exports();
  functions();
}

void ModuleValidator::types() {
  for (const FuncType& ft : m_.types) {
    for (ValType t : ft.params) check_supported(t, 0);
    for (ValType t : ft.results) check_supported(t, 0);
  }
  for (uint32_t type_index : m_.func_types)
    if (type_index >= m_.types.size()) invalid(0, fmt::format("unknown type {}", type_index));
  for (const Function& f : m_.functions)
    if (f.type_index >= m_.types.size())
      invalid(f.body_begin, fmt::format("unknown type {}", f.type_index));
}

void ModuleValidator::imports() {
  for (const Import& im : m_.imports) {
    if (im.kind == ExternKind::Func && im.func_type >= m_.types.size())
      invalid(0, fmt::format("unknown type {}", im.func_type));
    if (im.kind == ExternKind::Global) check_supported(im.global.type, 0);
  }
}

void ModuleValidator::limits(const Limits& l, uint64_t bound, const char* too_large) const {
  if (l.min > bound) invalid(0, too_large);
  if (l.max && *l.max > bound) invalid(0, too_large);
  if (l.max && l.min > *l.max) invalid(0, "size minimum must not be greater than maximum");
}

void ModuleValidator::tables() {
  for (const TableType& t : m_.tables) {
    if (!is_ref(t.elem)) invalid(0, "malformed reference type");
    limits(t.limits, kMaxTableSize, "table size must be at most 2^32-1");
  }
}

void ModuleValidator::memories() {
  for (const MemoryType& mem : m_.memories) {
    limits(mem.limits, kMaxPages, "memory size must be at most 65536 pages (4GiB)");
    if (mem.limits.shared && !mem.limits.max) invalid(0, "shared memory must have maximum");
  }
  if (m_.memories.size() > 1) invalid(0, "multiple memories");
}

void ModuleValidator::globals() {
  for (const Global& g : m_.globals) {
    check_supported(g.type.type, g.init.offset);
    const_expr(g.init, g.type.type);
  }
}

void ModuleValidator::elems() {
  for (const ElemSegment& e : m_.elems) {
    if (!is_ref(e.type)) invalid(0, "malformed reference type");
    if (e.mode == SegmentMode::Active) {
      if (e.table >= m_.tables.size())
        invalid(e.offset.offset, fmt::format("unknown table {}", e.table));
      if (m_.tables[e.table].elem != e.type) invalid(e.offset.offset, "type mismatch");
      const_expr(e.offset, ValType::I32);
    }
    for (const ConstExpr& item : e.items) const_expr(item, e.type);
  }
}

void ModuleValidator::datas() {
  for (const DataSegment& d : m_.datas) {
    if (d.mode != SegmentMode::Active) continue;
    if (d.memory >= m_.memories.size())
      invalid(d.offset.offset, fmt::format("unknown memory {}", d.memory));
    const_expr(d.offset, ValType::I32);
  }
}

void ModuleValidator::start() {
  if (!m_.start) return;
  func_index(*m_.start, 0);
  const FuncType& ft = m_.func_type(*m_.start);
  if (!ft.params.empty() || !ft.results.empty())
    invalid(0, "start function must not have parameters or results");
}

void ModuleValidator::exports() {
  std::vector<std::string_view> names;
  names.reserve(m_.exports.size());
  for (const Export& e : m_.exports) {
    size_t count = 0;
    const char* what = "";
    switch (e.kind) {
    case ExternKind::Func:
      count = m_.func_types.size(), what = "function";
      break;
    case ExternKind::Table:
      count = m_.tables.size(), what = "table";
      break;
    case ExternKind::Memory:
      count = m_.memories.size(), what = "memory";
      break;
    case ExternKind::Global:
      count = m_.global_types.size(), what = "global";
      break;
    }
    if (e.index >= count) invalid(0, fmt::format("unknown {} {}", what, e.index));
    names.push_back(e.name);
  }
  std::ranges::sort(names);
  if (std::ranges::adjacent_find(names) != names.end()) invalid(0, "duplicate export name");
}

// C.refs: the functions that `ref.func` in a body may name, i.e. those
// referenced anywhere outside function bodies.
void ModuleValidator::collect_declared_refs() {
  ctx_.declared_refs.assign(m_.func_types.size(), 0);
  auto declare = [&](const ConstExpr& e) {
    for (const ConstInstr& in : e.instrs)
      if (in.op == Op::RefFunc && in.a < ctx_.declared_refs.size()) ctx_.declared_refs[in.a] = 1;
  };
  for (const Global& g : m_.globals) declare(g.init);
  for (const ElemSegment& e : m_.elems)
    for (const ConstExpr& item : e.items) declare(item);
  for (const Export& e : m_.exports)
    if (e.kind == ExternKind::Func && e.index < ctx_.declared_refs.size())
      ctx_.declared_refs[e.index] = 1;
}

// In 2.0 a constant expression is t.const, ref.null, ref.func, or global.get
// of an immutable imported global. None of them pops, so a valid expression
// is exactly one instruction of the expected type.
void ModuleValidator::const_expr(const ConstExpr& e, ValType expect) {
  ValType type = kUnknown;
  for (const ConstInstr& in : e.instrs) {
    switch (in.op) {
    case Op::I32Const:
      type = ValType::I32;
      break;
    case Op::I64Const:
      type = ValType::I64;
      break;
    case Op::F32Const:
      type = ValType::F32;
      break;
    case Op::F64Const:
      type = ValType::F64;
      break;
    case Op::RefNull:
      type = in.type;
      break;
    case Op::RefFunc:
      func_index(in.a, in.offset);
      type = ValType::FuncRef;
      break;
    case Op::GlobalGet:
      if (in.a >= m_.num_imported_globals || in.a >= m_.global_types.size())
        invalid(in.offset, fmt::format("unknown global {}", in.a));
      if (m_.global_types[in.a].mut) invalid(in.offset, "constant expression required");
      type = m_.global_types[in.a].type;
      break;
    default:
      invalid(in.offset, "constant expression required");
    }
  }
  if (e.instrs.size() != 1 || type != expect) invalid(e.offset, "type mismatch");
}

void ModuleValidator::functions() {
  size_t code_bytes = 0;
  for (const Function& f : m_.functions) code_bytes += f.body_end - f.body_begin;
  ctx_.stack_types_budget = kStackTypesAllowance + kStackTypesPerCodeByte * code_bytes;
  const bool lengths_agree = m_.num_imported_funcs + m_.functions.size() <= m_.func_types.size();
  if (lengths_agree && code_bytes >= kParallelCodeBytes &&
      std::thread::hardware_concurrency() >= 2 && functions_in_parallel(code_bytes))
    return;
  validate_functions(0, m_.functions.size(), ctx_);
  keep({&ctx_});
}

// The records of every function, validated with `parts` in order, become
// the module's pools, and each function's FunctionInfo its part of them.
void ModuleValidator::keep(std::initializer_list<BodyContext*> parts) {
  std::vector<StablePoint> points;
  std::vector<ValType> types;
  if (parts.size() == 1) {
    points = std::move((*parts.begin())->points);
    types = std::move((*parts.begin())->types);
  } else {
    size_t num_points = 0, num_types = 0;
    for (const BodyContext* part : parts) {
      num_points += part->points.size();
      num_types += part->types.size();
    }
    points.reserve(num_points);
    types.reserve(num_types);
    for (const BodyContext* part : parts) {
      points.insert(points.end(), part->points.begin(), part->points.end());
      types.insert(types.end(), part->types.begin(), part->types.end());
    }
  }
  const StablePoint* p = points.data();
  const ValType* t = types.data();
  size_t i = 0;
  for (const BodyContext* part : parts)
    for (auto [num_points, num_types] : part->counts) {
      FunctionInfo& info = m_.functions[i++].info;
      info.stable_points = {p, num_points};
      info.stack_types = {t, num_types};
      p += num_points;
      t += num_types;
    }
  // Moved, the vectors keep their storage: the spans stay valid.
  m_.stable_points = std::move(points);
  m_.stack_types = std::move(types);
}

void ModuleValidator::validate_functions(size_t begin, size_t end, BodyContext& ctx) {
  FunctionValidator fv(m_, ctx);
  // Every function has its entry point; most have a few more.
  ctx.points.reserve(2 * (end - begin));
  ctx.counts.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    uint32_t func_index = m_.num_imported_funcs + static_cast<uint32_t>(i);
    if (func_index >= m_.func_types.size())
      throw DecodeError(m_.functions[i].body_begin,
                        "function and code section have inconsistent lengths");
    fv.validate(func_index, m_.functions[i]);
  }
}

// The bodies in two halves (by code size) on two threads, each with the
// whole stable-point budget. True when both were valid and used no more
// than the budget together; otherwise the caller validates in order, which
// finds the same error with the same message a single pass always did
// (the module is invalid: its time does not matter).
bool ModuleValidator::functions_in_parallel(size_t code_bytes) {
  size_t split = 0;
  for (size_t bytes = 0; split < m_.functions.size() && bytes < code_bytes / 2; ++split)
    bytes += m_.functions[split].body_end - m_.functions[split].body_begin;
  BodyContext second = ctx_;
  bool second_ok = false;
  std::thread worker([&] {
    try {
      validate_functions(split, m_.functions.size(), second);
      second_ok = true;
    } catch (...) {
    }
  });
  bool first_ok = false;
  BodyContext first = ctx_;
  try {
    validate_functions(0, split, first);
    first_ok = true;
  } catch (...) {
  }
  worker.join();
  const size_t budget = ctx_.stack_types_budget;
  if (!first_ok || !second_ok ||
      (budget - first.stack_types_budget) + (budget - second.stack_types_budget) > budget)
    return false;
  keep({&first, &second});
  return true;
}

// ----------------------------------------------------------------------------
// In the spec, decoding precedes validation: a module whose bodies are
// malformed anywhere is malformed, even if a validation rule failed earlier
// in our single pass. On that (rare) path, scan every body for decoding errors.

void check_body_well_formed(const Module& m, const Function& f) {
  InstrReader reader(body_reader(m, f));
  std::vector<Op> open{Op::Block}; // the function's frame
  Instr in;
  while (!open.empty()) {
    if (reader.at_end()) throw DecodeError(f.body_end, "END opcode expected");
    reader.next(in);
    check_well_formed(m, in);
    switch (in.op) {
    case Op::Block:
    case Op::Loop:
    case Op::If:
      open.push_back(in.op);
      break;
    case Op::Else:
      if (open.back() != Op::If) throw DecodeError(in.offset, "END opcode expected");
      open.back() = Op::Else;
      break;
    case Op::End:
      open.pop_back();
      break;
    default:
      break;
    }
  }
  if (!reader.at_end()) throw DecodeError(reader.offset(), "section size mismatch");
}

void check_bodies_well_formed(const Module& m) {
  for (const Function& f : m.functions) check_body_well_formed(m, f);
}

} // namespace

void validate_module(Module& module) {
  try {
    ModuleValidator(module).validate();
  } catch (const ValidationError&) {
    check_bodies_well_formed(module);
    throw;
  }
}

} // namespace tern::wasm
