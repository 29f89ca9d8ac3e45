// The decoded module: everything the binary says, plus what validation
// learned about each function (stack heights, stable points). Immutable once
// validated; instances share it.
#pragma once

#include "util/sha256.h"
#include "wasm/instr.h"
#include "wasm/types.h"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tern::wasm {

struct Import {
  std::string module;
  std::string name;
  ExternKind kind = ExternKind::Func;
  uint32_t func_type = 0; // kind == Func: type index
  TableType table;        // kind == Table
  MemoryType memory;      // kind == Memory
  GlobalType global;      // kind == Global
};

struct Export {
  std::string name;
  ExternKind kind = ExternKind::Func;
  uint32_t index = 0;
};

// An instruction of a constant expression: the fields that validation and
// evaluation read (before validation any instruction may appear here; it is
// then refused by its opcode and offset).
struct ConstInstr {
  Op op = Op::Nop;
  ValType type = ValType::I32; // ref.null
  uint32_t offset = 0;         // absolute byte offset of the opcode
  uint32_t a = 0;              // ref.func, global.get
  uint64_t imm = 0;            // constant bit pattern

  ConstInstr() = default;
  // Implicit: the decoder keeps what it read with InstrReader.
  ConstInstr(const Instr& in) : op(in.op), type(in.type), offset(in.offset), a(in.a), imm(in.imm) {}
};

// The instructions of a constant expression. A valid one has exactly one,
// kept inline: a module has an expression per element segment item, often
// one per function, and a heap block each was most of their cost.
class ConstInstrs {
public:
  ConstInstrs() = default;
  ConstInstrs(std::initializer_list<ConstInstr> list) {
    for (const ConstInstr& in : list) push_back(in);
  }
  void push_back(const ConstInstr& in) {
    if (size_ == 0) {
      one_ = in;
    } else {
      if (size_ == 1) more_.push_back(one_);
      more_.push_back(in);
    }
    ++size_;
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const ConstInstr* begin() const { return size_ <= 1 ? &one_ : more_.data(); }
  const ConstInstr* end() const { return begin() + size_; }
  const ConstInstr& operator[](size_t i) const { return begin()[i]; }

private:
  ConstInstr one_;
  uint32_t size_ = 0;
  std::vector<ConstInstr> more_; // all of them, when there are several
};

// A constant expression (global initializer, segment offset, element item),
// without its terminating `end`.
struct ConstExpr {
  ConstInstrs instrs;
  uint32_t offset = 0; // of the first instruction
};

struct Global {
  GlobalType type;
  ConstExpr init;
};

enum class SegmentMode : uint8_t { Active, Passive, Declarative };

struct ElemSegment {
  SegmentMode mode = SegmentMode::Active;
  uint32_t table = 0; // active only
  ConstExpr offset;   // active only
  ValType type = ValType::FuncRef;
  std::vector<ConstExpr> items; // function-index forms become `ref.func i`
};

struct DataSegment {
  SegmentMode mode = SegmentMode::Active; // never Declarative
  uint32_t memory = 0;
  ConstExpr offset;
  uint32_t begin = 0; // byte range of the contents in Module::bytes
  uint32_t size = 0;
};

// What validation learned about a function, for the interpreter's
// translator, the AOT compiler and snapshots.
enum class StablePointKind : uint8_t {
  FunctionEntry = 0, // before the first instruction
  LoopHeader = 1,    // the first instruction of a loop body
  CallSite = 2,      // a call / call_indirect in progress
  // memory.atomic.wait32/64: a thread blocked there stops for a checkpoint
  // and issues the wait again on resume (runtime/wait_queue.h)
  AtomicWait = 3,
};

struct StablePoint {
  uint32_t offset = 0; // absolute wasm offset of the instruction
  StablePointKind kind = StablePointKind::FunctionEntry;
  uint32_t stack_height = 0; // operands on the stack before the instruction
                             // (for calls: including the arguments)
  uint32_t types_begin = 0;  // index into FunctionInfo::stack_types
};

// The arrays are views of the module's pools (FunctionPools::stable_points
// and ::stack_types).
struct FunctionInfo {
  uint32_t max_stack_height = 0;              // operand stack, in values
  std::span<const StablePoint> stable_points; // sorted by offset
  std::span<const ValType> stack_types;       // operand types of every point

  // The stable point at `offset`, or nullptr. The function entry shares its
  // offset with the first instruction, which may itself be a loop or a call:
  // then that instruction's point is returned; ask by kind to get the entry.
  const StablePoint* find(uint32_t offset) const;
  const StablePoint* find(uint32_t offset, StablePointKind kind) const;
  std::span<const ValType> types_at(const StablePoint& p) const {
    return {stack_types.data() + p.types_begin, p.stack_height};
  }
};

struct Function {
  uint32_t type_index = 0;
  std::span<const ValType> locals; // declared locals, after the parameters
                                   // (a view of FunctionPools::local_types)
  uint32_t body_begin = 0;         // offset of the first instruction
  uint32_t body_end = 0;           // one past the final `end`
  FunctionInfo info;               // filled by the validator
};

struct Names {
  std::string module;
  std::map<uint32_t, std::string> functions;
  std::map<uint32_t, std::map<uint32_t, std::string>> locals;
};

struct CustomSection {
  std::string name;
  uint32_t begin = 0; // contents' byte range in Module::bytes
  uint32_t size = 0;
};

// A module's defined functions and the pools their spans view, each
// function's part after the previous one's: the decoder fills local_types
// (Function::locals), the validator the others (FunctionInfo::stable_points
// and ::stack_types). One allocation per pool and module instead of a few
// per function. A move keeps the pools' storage, so the spans stay valid; a
// copy points the copies' spans into its own pools.
struct FunctionPools {
  std::vector<Function> functions; // defined functions, in index order
  std::vector<ValType> local_types;
  std::vector<StablePoint> stable_points;
  std::vector<ValType> stack_types;

  FunctionPools() = default;
  FunctionPools(FunctionPools&&) noexcept = default;
  FunctionPools& operator=(FunctionPools&&) noexcept = default;
  FunctionPools(const FunctionPools& other);
  FunctionPools& operator=(const FunctionPools& other);
  ~FunctionPools() = default;
};

struct Module : FunctionPools {
  std::vector<uint8_t> bytes; // the binary, owned

  std::vector<FuncType> types;
  std::vector<Import> imports;

  // Index spaces: imports first, then the module's own definitions.
  std::vector<uint32_t> func_types; // type index of every function
  std::vector<TableType> tables;
  std::vector<MemoryType> memories;
  std::vector<GlobalType> global_types;
  uint32_t num_imported_funcs = 0;
  uint32_t num_imported_tables = 0;
  uint32_t num_imported_memories = 0;
  uint32_t num_imported_globals = 0;

  // functions, local_types, stable_points, stack_types: FunctionPools
  std::vector<Global> globals; // defined globals
  std::vector<Export> exports;
  std::optional<uint32_t> start;
  std::vector<ElemSegment> elems;
  std::vector<DataSegment> datas;
  std::optional<uint32_t> data_count;
  Names names;
  std::vector<CustomSection> customs;
  // The SHA-256 of `bytes` when whoever made the module already knew it (a
  // restore: the snapshot reader checked it), so that it is computed once.
  std::optional<util::Sha256Digest> known_sha256;

  const FuncType& func_type(uint32_t func_index) const { return types[func_types[func_index]]; }
  bool is_imported_func(uint32_t func_index) const { return func_index < num_imported_funcs; }
  const Function& defined_func(uint32_t func_index) const {
    return functions[func_index - num_imported_funcs];
  }
  std::span<const uint8_t> data_bytes(const DataSegment& d) const {
    return {bytes.data() + d.begin, d.size};
  }
  // A name for display: from the name section, else "func[N]".
  std::string func_name(uint32_t func_index) const;
  const Export* find_export(std::string_view name) const;
  // The module's identity for snapshots and compiled code: known_sha256,
  // else the SHA-256 of `bytes` (computed each time: about 50 us per 40 KB).
  util::Sha256Digest sha256() const;
};

} // namespace tern::wasm
