// Validator: what it accepts and rejects, and the stable points it records.
// Bodies are hand-assembled so every offset in the expectations is known.
#include "tern/error.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <cstdint>
#include <deque>
#include <gtest/gtest.h>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace tern::wasm {
namespace {

using enum ValType;
using Kind = StablePointKind;

// Opcode bytes used by the hand-assembled bodies.
enum : uint8_t {
  kUnreachable = 0x00,
  kNop = 0x01,
  kBlock = 0x02,
  kLoop = 0x03,
  kIf = 0x04,
  kElse = 0x05,
  kEnd = 0x0B,
  kBr = 0x0C,
  kBrIf = 0x0D,
  kBrTable = 0x0E,
  kReturn = 0x0F,
  kCall = 0x10,
  kCallIndirect = 0x11,
  kDrop = 0x1A,
  kSelect = 0x1B,
  kSelectT = 0x1C,
  kLocalGet = 0x20,
  kLocalSet = 0x21,
  kGlobalGet = 0x23,
  kGlobalSet = 0x24,
  kI32Load = 0x28,
  kI64Load = 0x29,
  kI32Const = 0x41,
  kI64Const = 0x42,
  kF32Const = 0x43,
  kI32Add = 0x6A,
  kRefNull = 0xD0,
  kRefFunc = 0xD2,
  kMiscPrefix = 0xFC,
  kVoid = 0x40, // empty block type
};
constexpr uint8_t kDataDrop = 9; // after kMiscPrefix

constexpr uint32_t kHeader = 8; // bodies start after a fake module header

// A Module built directly, as the decoder would produce it, with function
// bodies appended to `bytes` so that their offsets are exact.
struct TestModule {
  Module m;
  std::deque<std::vector<ValType>> locals; // what each Function::locals views

  TestModule() { m.bytes = {0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}; }

  uint32_t type(std::vector<ValType> params, std::vector<ValType> results) {
    m.types.push_back({std::move(params), std::move(results)});
    return static_cast<uint32_t>(m.types.size() - 1);
  }
  uint32_t import_func(uint32_t type_index) {
    Import im;
    im.module = "env";
    im.name = "f" + std::to_string(m.imports.size());
    im.func_type = type_index;
    m.imports.push_back(im);
    m.func_types.insert(m.func_types.begin() + m.num_imported_funcs, type_index);
    return m.num_imported_funcs++;
  }
  // Appends a function; returns the absolute offset of its first instruction.
  uint32_t func(uint32_t type_index, std::vector<uint8_t> body, std::vector<ValType> locals = {}) {
    Function f;
    f.type_index = type_index;
    f.locals = this->locals.emplace_back(std::move(locals));
    f.body_begin = static_cast<uint32_t>(m.bytes.size());
    m.bytes.insert(m.bytes.end(), body.begin(), body.end());
    f.body_end = static_cast<uint32_t>(m.bytes.size());
    m.functions.push_back(std::move(f));
    m.func_types.push_back(type_index);
    return m.functions.back().body_begin;
  }
  void memory(uint64_t min, std::optional<uint64_t> max = std::nullopt) {
    m.memories.push_back({Limits{min, max, false}});
  }
  void table(ValType elem, uint64_t min = 1) { m.tables.push_back({elem, Limits{min, {}, false}}); }
  void global(ValType t, bool mut, Instr init) {
    init.offset = 0;
    m.global_types.push_back({t, mut});
    m.globals.push_back({{t, mut}, ConstExpr{{init}, 0}});
  }
  void export_func(std::string name, uint32_t index) {
    m.exports.push_back({std::move(name), ExternKind::Func, index});
  }
};

Instr const_instr(Op op, uint64_t imm = 0, uint32_t a = 0) {
  Instr in;
  in.op = op;
  in.imm = imm;
  in.a = a;
  return in;
}

// The message of the ValidationError that validation throws, or "" if none.
std::string validation_error(TestModule& t) {
  try {
    validate_module(t.m);
  } catch (const ValidationError& e) {
    return e.what();
  }
  return "";
}

std::string decode_error(TestModule& t) {
  try {
    validate_module(t.m);
  } catch (const DecodeError& e) {
    return e.what();
  }
  return "";
}

// The message for a single function body of type `params` -> `results`.
std::string body_error(std::vector<ValType> params, std::vector<ValType> results,
                       std::vector<uint8_t> body, std::vector<ValType> locals = {}) {
  TestModule t;
  t.func(t.type(std::move(params), std::move(results)), std::move(body), std::move(locals));
  return validation_error(t);
}

struct ExpectedPoint {
  uint32_t offset;
  StablePointKind kind;
  std::vector<ValType> stack;
};

void expect_points(const FunctionInfo& info, std::initializer_list<ExpectedPoint> expected) {
  ASSERT_EQ(info.stable_points.size(), expected.size());
  size_t i = 0;
  for (const ExpectedPoint& want : expected) {
    const StablePoint& got = info.stable_points[i++];
    EXPECT_EQ(got.offset, want.offset) << "point " << i - 1;
    EXPECT_EQ(got.kind, want.kind) << "point " << i - 1;
    EXPECT_EQ(got.stack_height, want.stack.size()) << "point " << i - 1;
    auto types = info.types_at(got);
    EXPECT_EQ(std::vector<ValType>(types.begin(), types.end()), want.stack) << "point " << i - 1;
  }
}

// ---------------------------------------------------------------------------
// Stable points

TEST(ValidatorStablePoints, FunctionEntryOnlyForStraightLineCode) {
  TestModule t;
  uint32_t begin = t.func(t.type({}, {I32}), {kI32Const, 1, kI32Const, 2, kI32Add, kEnd});
  validate_module(t.m);
  const FunctionInfo& info = t.m.functions[0].info;
  EXPECT_EQ(begin, kHeader);
  expect_points(info, {{begin, Kind::FunctionEntry, {}}});
  EXPECT_EQ(info.max_stack_height, 2u);
}

TEST(ValidatorStablePoints, LoopHeaderIncludesLoopParamsAndValuesBelow) {
  TestModule t;
  uint32_t sig = t.type({I32}, {I32});
  uint32_t begin = t.func(sig, {
                                   kI32Const, 7, // +0  [i32]
                                   kI64Const, 1, // +2  [i32 i64]
                                   kLocalGet, 0, // +4  [i32 i64 i32]
                                   kLoop, 0,     // +6  loop (type 0): [i32] -> [i32]
                                   kI32Const, 1, // +8  [i32 i64 | i32 i32]
                                   kI32Add,      // +10
                                   kEnd,         // +11 [i32 i64 i32]
                                   kDrop, kDrop, // +12 [i32]
                                   kEnd,         // +14
                               });
  validate_module(t.m);
  const FunctionInfo& info = t.m.functions[0].info;
  expect_points(info,
                {{begin, Kind::FunctionEntry, {}}, {begin + 6, Kind::LoopHeader, {I32, I64, I32}}});
  EXPECT_EQ(info.max_stack_height, 4u);
}

TEST(ValidatorStablePoints, NestedCallsRecordOperandsBelowTheArguments) {
  TestModule t;
  uint32_t callee_type = t.type({I32, I32}, {I32});
  uint32_t callee = t.import_func(callee_type);
  uint32_t begin = t.func(t.type({}, {}), {
                                              kF32Const, 0, 0, 0x80, 0x3F, // +0  [f32]
                                              kI32Const, 1,                // +5  [f32 i32]
                                              kI32Const, 2,                // +7
                                              kI32Const, 3,                // +9  [f32 i32 i32 i32]
                                              kCall, uint8_t(callee),      // +11 -> [f32 i32 i32]
                                              kCall, uint8_t(callee),      // +13 -> [f32 i32]
                                              kDrop, kDrop,                // +15
                                              kEnd,                        // +17
                                          });
  validate_module(t.m);
  const FunctionInfo& info = t.m.functions[0].info;
  expect_points(info, {{begin, Kind::FunctionEntry, {}},
                       {begin + 11, Kind::CallSite, {F32, I32, I32, I32}},
                       {begin + 13, Kind::CallSite, {F32, I32, I32}}});
  EXPECT_EQ(info.max_stack_height, 4u);
}

TEST(ValidatorStablePoints, CallIndirectIncludesTheTableIndex) {
  TestModule t;
  t.table(FuncRef);
  uint32_t callee_type = t.type({I32}, {I64});
  uint32_t begin = t.func(t.type({}, {I64}), {
                                                 kI64Const, 5, // +0 [i64]
                                                 kI32Const, 6, // +2 arg
                                                 kI32Const, 0, // +4 table index
                                                 kCallIndirect, uint8_t(callee_type), 0, // +6
                                                 kI64Const, 1,                           // +9
                                                 kDrop, kDrop,                           // +11
                                                 kEnd,                                   // +13
                                             });
  validate_module(t.m);
  expect_points(t.m.functions[0].info,
                {{begin, Kind::FunctionEntry, {}}, {begin + 6, Kind::CallSite, {I64, I32, I32}}});
}

TEST(ValidatorStablePoints, UnreachableCodeHasNoPoints) {
  TestModule t;
  uint32_t void_type = t.type({}, {});
  uint32_t callee = t.import_func(void_type);
  uint32_t begin = t.func(void_type, {
                                         kBlock,       kVoid,           // +0
                                         kBr,          0,               // +2
                                         kCall,        uint8_t(callee), // +4  after br: dead
                                         kLoop,        kVoid, // +6  dead, though a new frame
                                         kCall,        uint8_t(callee), // +8  dead
                                         kEnd,                          // +10
                                         kEnd,                // +11 block ends: live again
                                         kI32Const,    1,     // +12
                                         kIf,          kVoid, // +14
                                         kReturn,             // +16
                                         kElse,               // +17 else branch is live
                                         kCall,        uint8_t(callee), // +18
                                         kEnd,                          // +20
                                         kLoop,        kVoid,           // +21
                                         kUnreachable,                  // +23
                                         kLoop,        kVoid,           // +24 dead
                                         kEnd,                          // +26
                                         kEnd,                          // +27
                                         kEnd,                          // +28
                                     });
  validate_module(t.m);
  expect_points(t.m.functions[0].info, {{begin, Kind::FunctionEntry, {}},
                                        {begin + 18, Kind::CallSite, {}},
                                        {begin + 21, Kind::LoopHeader, {}}});
}

TEST(ValidatorStablePoints, MultiValueBlockParamsAndFind) {
  TestModule t;
  uint32_t pair = t.type({I32, I64}, {I64});
  uint32_t callee = t.import_func(t.type({I64}, {I64}));
  uint32_t begin = t.func(t.type({}, {I64}),
                          {
                              kLoop, kVoid,           // +0 also the entry
                              kEnd,                   // +2
                              kI32Const, 1,           // +3
                              kI64Const, 2,           // +5
                              kBlock, uint8_t(pair),  // +7 [i32 i64] -> [i64]
                              kCall, uint8_t(callee), // +9 [i32 i64]
                              kLocalSet, 0,           // +11 i64 into local 0
                              kDrop,                  // +13
                              kLocalGet, 0,           // +14
                              kEnd,                   // +16
                              kEnd,                   // +17
                          },
                          {I64});
  validate_module(t.m);
  const FunctionInfo& info = t.m.functions[0].info;
  expect_points(info, {{begin, Kind::FunctionEntry, {}},
                       {begin, Kind::LoopHeader, {}},
                       {begin + 9, Kind::CallSite, {I32, I64}}});
  ASSERT_NE(info.find(begin), nullptr);
  EXPECT_EQ(info.find(begin)->kind, Kind::LoopHeader);
  ASSERT_NE(info.find(begin, Kind::FunctionEntry), nullptr);
  EXPECT_EQ(info.find(begin, Kind::FunctionEntry)->kind, Kind::FunctionEntry);
  ASSERT_NE(info.find(begin + 9), nullptr);
  EXPECT_EQ(info.find(begin + 9)->stack_height, 2u);
  EXPECT_EQ(info.find(begin + 3), nullptr);
  EXPECT_EQ(info.find(begin + 9, Kind::LoopHeader), nullptr);
}

// ---------------------------------------------------------------------------
// Bodies

struct BodyCase {
  const char* name;
  std::vector<ValType> params, results;
  std::vector<uint8_t> body;
  const char* error; // "" = valid
};

TEST(ValidatorBodies, AcceptsAndRejectsWithTheSpecMessages) {
  const BodyCase cases[] = {
      {"straight line", {I32}, {I32}, {kLocalGet, 0, kI32Const, 1, kI32Add, kEnd}, ""},
      {"operand type", {}, {}, {kI64Const, 0, kI32Const, 0, kI32Add, kDrop, kEnd}, "type mismatch"},
      {"underflow", {}, {}, {kI32Const, 0, kI32Add, kDrop, kEnd}, "type mismatch"},
      {"value left over", {}, {}, {kI32Const, 0, kEnd}, "type mismatch"},
      {"missing result", {}, {I32}, {kEnd}, "type mismatch"},
      {"unknown local", {I32}, {}, {kLocalGet, 1, kDrop, kEnd}, "unknown local 1"},
      {"unknown label", {}, {}, {kBr, 1, kEnd}, "unknown label 1"},
      {"unknown function", {}, {}, {kCall, 5, kEnd}, "unknown function 5"},
      {"unknown global", {}, {}, {kGlobalGet, 0, kDrop, kEnd}, "unknown global 0"},
      {"unknown memory", {}, {}, {kI32Const, 0, kI32Load, 2, 0, kDrop, kEnd}, "unknown memory 0"},
      {"unknown table", {}, {}, {kI32Const, 0, kCallIndirect, 0, 0, kEnd}, "unknown table 0"},
      {"unknown block type", {}, {}, {kBlock, 9, kEnd, kEnd}, "unknown type 9"},
      {"if without else must not change types",
       {},
       {},
       {kI32Const, 1, kIf, 0x7F, kI32Const, 1, kEnd, kDrop, kEnd},
       "type mismatch"},
      {"if with else",
       {},
       {I32},
       {kI32Const, 1, kIf, 0x7F, kI32Const, 1, kElse, kI32Const, 2, kEnd, kEnd},
       ""},
      {"br_table arity",
       {},
       {},
       {kBlock, 0x7F, kBlock, kVoid, kI32Const, 0, kI32Const, 0, kBrTable, 1, 0, 1, kEnd, kI32Const,
        0, kEnd, kDrop, kEnd},
       "type mismatch"},
      {"br_table meets f32 and f64 on the bottom type",
       {},
       {},
       {kBlock, 0x7C, kBlock, 0x7D,  kUnreachable, kI32Const, 1, kBrTable, 2, 0,
        1,      1,    kEnd,   kDrop, 0x44,         0,         0, 0,        0, 0,
        0,      0,    0,      kEnd,  kDrop,        kEnd},
       ""},
      {"br_if after unreachable yields the label types",
       {},
       {I64},
       {kUnreachable, kBrIf, 0, 0xAD /* i64.extend_i32_u */, kEnd},
       "type mismatch"},
      {"select after unreachable", {}, {I32}, {kUnreachable, kSelect, kEnd}, ""},
      {"untyped select of references",
       {},
       {},
       {kRefNull, 0x70, kRefNull, 0x70, kI32Const, 0, kSelect, kDrop, kEnd},
       "type mismatch"},
      {"typed select of references",
       {},
       {},
       {kRefNull, 0x70, kRefNull, 0x70, kI32Const, 0, kSelectT, 1, 0x70, kDrop, kEnd},
       ""},
      {"select with two types",
       {},
       {},
       {kI32Const, 0, kI32Const, 0, kI32Const, 0, kSelectT, 2, 0x7F, 0x7F, kDrop, kEnd},
       "invalid result arity"},
      {"return checks the results", {}, {I32}, {kI64Const, 0, kReturn, kEnd}, "type mismatch"},
      {"unreachable then anything", {}, {I32}, {kUnreachable, kI32Add, kEnd}, ""},
      {"ref.func undeclared", {}, {}, {kRefFunc, 0, kDrop, kEnd}, "undeclared function reference"},
  };
  for (const BodyCase& c : cases)
    EXPECT_EQ(body_error(c.params, c.results, c.body), c.error) << c.name;
}

// Threads proposal: atomic accesses need a memory and exactly their
// natural alignment; wait and notify have their fixed types.
TEST(ValidatorBodies, AtomicInstructions) {
  constexpr uint8_t kAtomic = 0xFE;
  struct AtomicCase {
    const char* name;
    std::vector<uint8_t> body;
    const char* error;
  };
  const AtomicCase cases[] = {
      {"i32.atomic.load", {kI32Const, 0, kAtomic, 0x10, 2, 0, kDrop, kEnd}, ""},
      {"i64.atomic.load", {kI32Const, 0, kAtomic, 0x11, 3, 0, kDrop, kEnd}, ""},
      {"under-aligned",
       {kI32Const, 0, kAtomic, 0x10, 1, 0, kDrop, kEnd},
       "alignment must be equal to natural alignment"},
      {"over-aligned",
       {kI32Const, 0, kAtomic, 0x12, 1, 0, kDrop, kEnd},
       "alignment must be equal to natural alignment"},
      {"i64.atomic.rmw.add types",
       {kI32Const, 0, kI64Const, 1, kAtomic, 0x1F, 3, 0, kDrop, kEnd},
       ""},
      {"i64.atomic.rmw.add wrong operand",
       {kI32Const, 0, kI32Const, 1, kAtomic, 0x1F, 3, 0, kDrop, kEnd},
       "type mismatch"},
      {"i32.atomic.rmw.cmpxchg",
       {kI32Const, 0, kI32Const, 1, kI32Const, 2, kAtomic, 0x48, 2, 0, kDrop, kEnd},
       ""},
      {"memory.atomic.wait64",
       {kI32Const, 0, kI64Const, 1, kI64Const, 2, kAtomic, 0x02, 3, 0, kDrop, kEnd},
       ""},
      {"memory.atomic.notify", {kI32Const, 0, kI32Const, 1, kAtomic, 0x00, 2, 0, kDrop, kEnd}, ""},
      {"i32.atomic.store8", {kI32Const, 0, kI32Const, 1, kAtomic, 0x19, 0, 0, kEnd}, ""},
      {"atomic.fence", {kAtomic, 0x03, 0, kEnd}, ""},
  };
  for (const AtomicCase& c : cases) {
    TestModule t;
    t.memory(1, 1);
    t.func(t.type({}, {}), c.body);
    EXPECT_EQ(validation_error(t), c.error) << c.name;
  }
  TestModule no_memory;
  no_memory.func(no_memory.type({}, {}), {kI32Const, 0, kAtomic, 0x10, 2, 0, kDrop, kEnd});
  EXPECT_EQ(validation_error(no_memory), "unknown memory 0");
  TestModule fence_without_memory; // atomic.fence needs none
  fence_without_memory.func(fence_without_memory.type({}, {}), {kAtomic, 0x03, 0, kEnd});
  EXPECT_EQ(validation_error(fence_without_memory), "");
  TestModule unknown;
  unknown.func(unknown.type({}, {}), {kAtomic, 0x7F, kEnd});
  EXPECT_EQ(decode_error(unknown), "illegal opcode 0xfe 127");
}

TEST(ValidatorBodies, ErrorsCarryTheOffsetOfTheInstruction) {
  TestModule t;
  uint32_t begin = t.func(t.type({}, {}), {kI64Const, 0, kI32Const, 0, kI32Add, kDrop, kEnd});
  try {
    validate_module(t.m);
    FAIL() << "accepted";
  } catch (const ValidationError& e) {
    EXPECT_EQ(e.offset(), begin + 4);
  }
}

TEST(ValidatorBodies, StablePointRecordsAreBoundedByCodeSize) {
  // Deep stacks under many calls would make the records quadratic in the
  // code size; that is refused instead of allocating gigabytes.
  TestModule t;
  uint32_t void_type = t.type({}, {});
  uint32_t callee = t.import_func(void_type);
  const size_t depth = 3000;
  std::vector<uint8_t> body;
  for (size_t i = 0; i < depth; ++i) body.insert(body.end(), {kI32Const, 0});
  for (size_t i = 0; i < depth; ++i) body.insert(body.end(), {kCall, uint8_t(callee)});
  for (size_t i = 0; i < depth; ++i) body.push_back(kDrop);
  body.push_back(kEnd);
  t.func(void_type, body);
  EXPECT_EQ(validation_error(t).rfind("code too complex", 0), 0u);
}

TEST(ValidatorBodies, SimdIsRejected) {
  EXPECT_EQ(body_error({}, {}, {kEnd}, {V128}),
            "the SIMD proposal is not supported yet (value type v128)");
  // In a body's bytes the reader refuses it (decoder_test.cpp's DecoderProposals).
  TestModule t;
  t.func(t.type({}, {}), {kBlock, 0x7B, kUnreachable, kEnd, kDrop, kEnd});
  EXPECT_EQ(decode_error(t).rfind("malformed block type (value type v128: the SIMD proposal", 0),
            0u);
}

TEST(ValidatorBodies, MemoryAccessAlignment) {
  auto error = [](uint8_t op, uint8_t align) {
    TestModule t;
    t.memory(1);
    t.func(t.type({}, {}), {kI32Const, 0, op, align, 0, kDrop, kEnd});
    return validation_error(t);
  };
  EXPECT_EQ(error(kI32Load, 2), "");
  EXPECT_EQ(error(kI32Load, 3), "alignment must not be larger than natural");
  EXPECT_EQ(error(kI64Load, 3), "");
  EXPECT_EQ(error(0x2C /* i32.load8_s */, 1), "alignment must not be larger than natural");
}

TEST(ValidatorBodies, GlobalSetNeedsAMutableGlobal) {
  for (bool mut : {false, true}) {
    TestModule t;
    t.global(I32, mut, const_instr(Op::I32Const));
    t.func(t.type({}, {}), {kI32Const, 0, kGlobalSet, 0, kEnd});
    EXPECT_EQ(validation_error(t), mut ? "" : "global is immutable");
  }
}

TEST(ValidatorBodies, RefFuncNeedsADeclaration) {
  TestModule t;
  uint32_t sig = t.type({}, {});
  t.func(sig, {kRefFunc, 1, kDrop, kEnd});
  t.func(sig, {kEnd});
  EXPECT_EQ(validation_error(t), "undeclared function reference");
  t.export_func("f", 1);
  EXPECT_EQ(validation_error(t), "");
}

TEST(ValidatorBodies, CallIndirectNeedsAFuncrefTable) {
  TestModule t;
  t.table(ExternRef);
  t.func(t.type({}, {}), {kI32Const, 0, kCallIndirect, 0, 0, kEnd});
  EXPECT_EQ(validation_error(t), "type mismatch");
}

TEST(ValidatorBodies, MalformedBodiesAreDecodeErrors) {
  auto error = [](std::vector<uint8_t> body) {
    TestModule t;
    t.memory(1);
    t.m.datas.push_back({SegmentMode::Passive, 0, {}, 0, 0}); // but no data count section
    t.func(t.type({}, {}), std::move(body));
    return decode_error(t);
  };
  EXPECT_EQ(error({kI32Const, 0, kDrop}), "END opcode expected");
  EXPECT_EQ(error({kEnd, kNop}), "section size mismatch");
  EXPECT_EQ(error({kElse, kEnd}), "END opcode expected");
  EXPECT_EQ(error({kI32Const, 1, kIf, kVoid, kElse, kElse, kEnd, kEnd}), "END opcode expected");
  EXPECT_EQ(error({kMiscPrefix, kDataDrop, 0, kEnd}), "data count section required");
  EXPECT_EQ(error({kI32Const, 0, kI32Load, 32, 0, kDrop, kEnd}), "malformed memop flags");
  // Decoding precedes validation: a later malformed byte wins over an earlier type error.
  EXPECT_EQ(error({kI32Add, 0xFF, kEnd}), "illegal opcode 0xff");
}

TEST(ValidatorBodies, DataIndexOutOfRangeWithoutDataCountIsInvalid) {
  // As the spec's text-format tests expect (wabt converts them without a
  // data count section).
  TestModule t;
  t.func(t.type({}, {}), {kMiscPrefix, kDataDrop, 0, kEnd});
  EXPECT_EQ(validation_error(t), "unknown data segment 0");
}

TEST(ValidatorBodies, DataDropWithDataCount) {
  TestModule t;
  t.memory(1);
  t.m.datas.push_back({SegmentMode::Passive, 0, {}, 0, 0});
  t.m.data_count = 1;
  t.func(t.type({}, {}), {kMiscPrefix, kDataDrop, 0, kEnd});
  EXPECT_EQ(validation_error(t), "");
  t.func(t.type({}, {}), {kMiscPrefix, kDataDrop, 1, kEnd});
  EXPECT_EQ(validation_error(t), "unknown data segment 1");
}

// ---------------------------------------------------------------------------
// Module-level rules

TEST(ValidatorModule, ExportNamesAreUnique) {
  TestModule t;
  t.func(t.type({}, {}), {kEnd});
  t.export_func("a", 0);
  t.export_func("b", 0);
  EXPECT_EQ(validation_error(t), "");
  t.export_func("a", 0);
  EXPECT_EQ(validation_error(t), "duplicate export name");
}

TEST(ValidatorModule, ExportIndexMustExist) {
  TestModule t;
  t.export_func("a", 0);
  EXPECT_EQ(validation_error(t), "unknown function 0");
}

TEST(ValidatorModule, MemoryLimits) {
  auto error = [](uint64_t min, std::optional<uint64_t> max, int count = 1) {
    TestModule t;
    for (int i = 0; i < count; ++i) t.memory(min, max);
    return validation_error(t);
  };
  EXPECT_EQ(error(1, 65536), "");
  EXPECT_EQ(error(65537, {}), "memory size must be at most 65536 pages (4GiB)");
  EXPECT_EQ(error(0, 65537), "memory size must be at most 65536 pages (4GiB)");
  EXPECT_EQ(error(2, 1), "size minimum must not be greater than maximum");
  EXPECT_EQ(error(1, {}, 2), "multiple memories");
}

TEST(ValidatorModule, TableLimits) {
  TestModule t;
  t.m.tables.push_back({FuncRef, Limits{3, 2, false}});
  EXPECT_EQ(validation_error(t), "size minimum must not be greater than maximum");
}

TEST(ValidatorModule, ConstantExpressions) {
  auto error = [](ValType type, Instr init, bool import_mutable = false) {
    TestModule t;
    Import im;
    im.module = "env";
    im.name = "g";
    im.kind = ExternKind::Global;
    im.global = {I32, import_mutable};
    t.m.imports.push_back(im);
    t.m.global_types.push_back(im.global);
    t.m.num_imported_globals = 1;
    t.global(type, false, init);
    return validation_error(t);
  };
  EXPECT_EQ(error(I32, const_instr(Op::I32Const)), "");
  EXPECT_EQ(error(I64, const_instr(Op::I32Const)), "type mismatch");
  EXPECT_EQ(error(I32, const_instr(Op::I32Add)), "constant expression required");
  EXPECT_EQ(error(I32, const_instr(Op::GlobalGet, 0, 0)), "");
  EXPECT_EQ(error(I32, const_instr(Op::GlobalGet, 0, 0), true), "constant expression required");
  // Only imported globals are visible to constant expressions in 2.0.
  EXPECT_EQ(error(I32, const_instr(Op::GlobalGet, 0, 1)), "unknown global 1");
  EXPECT_EQ(error(FuncRef, const_instr(Op::RefFunc, 0, 3)), "unknown function 3");
  Instr null = const_instr(Op::RefNull);
  null.type = ExternRef;
  EXPECT_EQ(error(ExternRef, null), "");
  EXPECT_EQ(error(FuncRef, null), "type mismatch");
}

TEST(ValidatorModule, ElementSegmentTypeMustMatchTable) {
  TestModule t;
  t.table(ExternRef);
  ElemSegment seg;
  seg.type = FuncRef;
  seg.offset = ConstExpr{{const_instr(Op::I32Const)}, 0};
  t.m.elems.push_back(seg);
  EXPECT_EQ(validation_error(t), "type mismatch");
}

TEST(ValidatorModule, ElementSegmentsDeclareFunctionReferences) {
  TestModule t;
  uint32_t sig = t.type({}, {});
  t.func(sig, {kRefFunc, 0, kDrop, kEnd});
  ElemSegment seg;
  seg.mode = SegmentMode::Declarative;
  seg.items.push_back(ConstExpr{{const_instr(Op::RefFunc, 0, 0)}, 0});
  t.m.elems.push_back(seg);
  EXPECT_EQ(validation_error(t), "");
}

TEST(ValidatorModule, DataSegmentNeedsAMemory) {
  TestModule t;
  t.m.datas.push_back({SegmentMode::Active, 0, ConstExpr{{const_instr(Op::I32Const)}, 0}, 0, 0});
  EXPECT_EQ(validation_error(t), "unknown memory 0");
}

TEST(ValidatorModule, StartFunctionTakesAndReturnsNothing) {
  TestModule t;
  t.func(t.type({I32}, {}), {kEnd});
  t.m.start = 0;
  EXPECT_EQ(validation_error(t).rfind("start function", 0), 0u);
  t.m.start = 1;
  EXPECT_EQ(validation_error(t), "unknown function 1");
}

TEST(ValidatorModule, ImportedFunctionTypeMustExist) {
  TestModule t;
  t.import_func(4);
  EXPECT_EQ(validation_error(t), "unknown type 4");
}

// ---------------------------------------------------------------------------
// Whole modules from WAT, through the decoder

// The ValidationError message for `wat` assembled without wabt's checks.
std::string wat_error(const std::string& wat) {
  Module m = decode_module(test::wat_to_wasm(wat, "--no-check"));
  try {
    validate_module(m);
  } catch (const ValidationError& e) {
    return e.what();
  }
  return "";
}

TEST(ValidatorWat, RepresentativeInvalidModules) {
  const std::pair<const char*, const char*> cases[] = {
      {"(module (func (result i32) (i64.const 0)))", "type mismatch"},
      {"(module (func (local i32) (drop (local.get 2))))", "unknown local 2"},
      {"(module (func (br 3)))", "unknown label 3"},
      {"(module (memory 1) (func (drop (i32.load align=8 (i32.const 0)))))",
       "alignment must not be larger than natural"},
      {"(module (func (drop (memory.size))))", "unknown memory 0"},
      {"(module (global i32 (i32.const 0)) (func (global.set 0 (i32.const 1))))",
       "global is immutable"},
      {"(module (func $f (drop (ref.func $f))))", "undeclared function reference"},
      {"(module (func) (export \"a\" (func 0)) (export \"a\" (func 0)))", "duplicate export name"},
      {"(module (memory 65537))", "memory size must be at most 65536 pages (4GiB)"},
      {"(module (memory 2 1))", "size minimum must not be greater than maximum"},
      {"(module (global i32 (i32.const 0)) (global i32 (global.get 0)))", "unknown global 0"},
      {"(module (global i32 (i32.ctz (i32.const 0))))", "constant expression required"},
      {"(module (func $f (param i32)) (start $f))",
       "start function must not have parameters or results"},
      {"(module (table 1 externref) (func (call_indirect (i32.const 0))))", "type mismatch"},
      {"(module (table 1 funcref) (func (table.init 1 0 (i32.const 0) (i32.const 0) "
       "(i32.const 0))) (elem func))",
       "unknown table 1"},
      {"(module (func (elem.drop 2)))", "unknown elem segment 2"},
      {"(module (func (result i32) (select (ref.null func) (ref.null func) (i32.const 1)) "
       "(drop) (i32.const 0)))",
       "type mismatch"},
  };
  for (const auto& [wat, message] : cases) EXPECT_EQ(wat_error(wat), message) << wat;
}

TEST(ValidatorWat, ValidModules) {
  const char* cases[] = {
      // ref.func of a function declared in an element segment or an export.
      "(module (table 1 funcref) (func $f (drop (ref.func $f))) (elem (i32.const 0) $f))",
      "(module (func $f (export \"f\") (drop (ref.func $f))))",
      // memory.init with the data count section wabt emits for it.
      "(module (memory 1) (data \"x\") (func (memory.init 0 (i32.const 0) (i32.const 0) "
      "(i32.const 1)) (data.drop 0)))",
      // Multi-value blocks and branches carrying values.
      "(module (func (result i32 i64) (block (result i32 i64) (i32.const 1) (i64.const 2) "
      "(br 0))))",
      "(module (func (param i32) (result i32) (block (result i32) (i32.const 5) (local.get 0) "
      "(br_table 0 0))))",
      // Imported immutable globals in constant expressions.
      "(module (import \"m\" \"g\" (global i32)) (global i32 (global.get 0)) (memory 1) "
      "(data (global.get 0) \"a\"))",
  };
  for (const char* wat : cases) EXPECT_EQ(wat_error(wat), "") << wat;
}

TEST(ValidatorWat, StablePointsOfADecodedFunction) {
  Module m = decode_module(test::wat_to_wasm(R"(
    (module
      (func $g (param i32 i64) (result i32) (local.get 0))
      (func (param i32) (result i32)
        (i64.const 9)     ;; +0
        (local.get 0)     ;; +2
        (i64.const 1)     ;; +4
        (call $g)         ;; +6   [i64 i32 i64]
        (drop) (drop)     ;; +8
        (local.get 0)     ;; +10
        (loop (param i32) (result i32)  ;; +12  [i32]
          (i32.const 1) (i32.add))))
  )"));
  validate_module(m);
  const Function& f = m.functions[1];
  uint32_t begin = f.body_begin;
  expect_points(f.info, {{begin, Kind::FunctionEntry, {}},
                         {begin + 6, Kind::CallSite, {I64, I32, I64}},
                         {begin + 12, Kind::LoopHeader, {I32}}});
  EXPECT_EQ(f.info.max_stack_height, 3u);
  expect_points(m.functions[0].info, {{m.functions[0].body_begin, Kind::FunctionEntry, {}}});
  EXPECT_EQ(m.functions[0].info.max_stack_height, 1u);
}

// The records are views of the module's pools (FunctionPools): they must
// stay right when the module is moved (as into the shared_ptr every engine
// holds), validated again, or copied (the copy's views its own pools).
TEST(ValidatorWat, RecordsSurviveAMoveACopyAndAnotherValidation) {
  Module decoded = decode_module(test::wat_to_wasm(R"(
    (module
      (func $g (param i32) (result i32) (local i64 f32) (local.get 0))
      (func (param i32) (result i32) (local f64)
        (i64.const 9) (local.get 0) (call $g) (drop) (drop)
        (local.get 0) (loop (param i32) (result i32) (call $g))))
  )"));
  validate_module(decoded);
  auto m = std::make_shared<Module>(std::move(decoded));
  validate_module(*m);
  auto check = [](const Module& mod) {
    const Function& g = mod.functions[0];
    const Function& f = mod.functions[1];
    EXPECT_EQ(std::vector<ValType>(g.locals.begin(), g.locals.end()),
              (std::vector<ValType>{I64, F32}));
    EXPECT_EQ(std::vector<ValType>(f.locals.begin(), f.locals.end()), std::vector<ValType>{F64});
    expect_points(g.info, {{g.body_begin, Kind::FunctionEntry, {}}});
    expect_points(f.info, {{f.body_begin, Kind::FunctionEntry, {}},
                           {f.body_begin + 4, Kind::CallSite, {I64, I32}},
                           {f.body_begin + 10, Kind::LoopHeader, {I32}},
                           {f.body_begin + 12, Kind::CallSite, {I32}}});
  };
  check(*m);
  auto copy = std::make_shared<Module>(*m);
  m.reset();
  check(*copy);
  EXPECT_EQ(copy->functions[1].info.stable_points.data(), copy->stable_points.data() + 1);
  EXPECT_EQ(copy->functions[1].locals.data(), copy->local_types.data() + 2);
}

// A module with more than 256 KiB of code is validated on two threads
// (validator.cpp, kParallelCodeBytes). It must accept and reject exactly
// what one pass does, with the same error, and record every function's
// stable points.
struct LargeModule {
  TestModule t;
  std::vector<uint32_t> begins;
  static constexpr size_t kFunctions = 3000;
  static constexpr size_t kNops = 120; // ~360 KB of code

  explicit LargeModule(size_t invalid_at = SIZE_MAX) {
    uint32_t ty = t.type({}, {I32});
    for (size_t i = 0; i < kFunctions; ++i) {
      std::vector<uint8_t> body(kNops, kNop);
      body.insert(body.end(), {kLoop, kVoid, kEnd});
      if (i != invalid_at) body.insert(body.end(), {kI32Const, 7});
      body.push_back(kEnd); // without the constant: nothing to return
      begins.push_back(t.func(ty, std::move(body)));
    }
  }
};

TEST(ValidatorLargeModule, EveryFunctionGetsItsStablePoints) {
  LargeModule large;
  validate_module(large.t.m);
  for (size_t i = 0; i < LargeModule::kFunctions; ++i)
    expect_points(large.t.m.functions[i].info,
                  {{large.begins[i], Kind::FunctionEntry, {}},
                   {large.begins[i] + uint32_t(LargeModule::kNops), Kind::LoopHeader, {}}});
}

TEST(ValidatorLargeModule, AnInvalidFunctionAnywhereIsTheSameError) {
  for (size_t bad : {size_t(0), size_t(1499), size_t(1500), LargeModule::kFunctions - 1}) {
    LargeModule large(bad);
    try {
      validate_module(large.t.m);
      ADD_FAILURE() << "function " << bad << " was accepted";
    } catch (const ValidationError& e) {
      EXPECT_EQ(std::string(e.what()), "type mismatch") << bad;
      // At the function's `end`, after the nops and the empty loop.
      EXPECT_EQ(e.offset(), large.begins[bad] + LargeModule::kNops + 3) << bad;
    }
  }
}

TEST(ValidatorLargeModule, TheFirstOfTwoInvalidFunctionsIsReported) {
  LargeModule large(2900);
  // A second invalid body early in the module: a one-pass validator meets
  // it first, so must the parallel one.
  large.t.m.bytes[large.begins[10]] = kDrop;
  try {
    validate_module(large.t.m);
    ADD_FAILURE() << "accepted";
  } catch (const ValidationError& e) {
    EXPECT_EQ(std::string(e.what()), "type mismatch");
    EXPECT_EQ(e.offset(), large.begins[10]);
  }
}

} // namespace
} // namespace tern::wasm
