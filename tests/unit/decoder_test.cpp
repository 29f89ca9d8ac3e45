// decode_module: what a valid binary decodes to, and the error (message and
// offset) of each kind of malformed binary. Valid inputs come from WAT via
// wat2wasm; malformed ones are written byte by byte.
#include "wasm/decoder.h"
#include "wasm/reader.h"
#include "wasm/validator.h"
#include "wat.h"

#include <cstdint>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace tern::wasm {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes uleb(uint64_t v) {
  Bytes out;
  do {
    uint8_t b = v & 0x7F;
    v >>= 7;
    out.push_back(v ? (b | 0x80) : b);
  } while (v);
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes str(const std::string& s) {
  return cat({uleb(s.size()), Bytes(s.begin(), s.end())});
}

Bytes section(uint8_t id, const Bytes& contents) {
  return cat({{id}, uleb(contents.size()), contents});
}

const Bytes kHeader = {0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00};

Bytes module(std::initializer_list<Bytes> sections) {
  Bytes out = kHeader;
  for (const Bytes& s : sections) out.insert(out.end(), s.begin(), s.end());
  return out;
}

// Common sections: one type [] -> [], one function of it, its body.
const Bytes kTypeVoid = section(1, {0x01, 0x60, 0x00, 0x00});
const Bytes kOneFunc = section(3, {0x01, 0x00});
const Bytes kEmptyBody = section(10, {0x01, 0x02, 0x00, 0x0B});

struct Failure {
  std::string message;
  size_t offset;
};

// The DecodeError of decoding `bytes`; fails the test if it decodes.
Failure decode_error(const Bytes& bytes) {
  try {
    decode_module(bytes);
  } catch (const DecodeError& e) {
    return {e.what(), e.offset()};
  }
  ADD_FAILURE() << "decoded without error";
  return {"", 0};
}

#define EXPECT_MALFORMED(bytes, msg, off)                                                          \
  do {                                                                                             \
    Failure f_ = decode_error(bytes);                                                              \
    EXPECT_EQ(f_.message, msg);                                                                    \
    EXPECT_EQ(f_.offset, size_t(off));                                                             \
  } while (0)

// ---------------------------------------------------------------- valid ----

TEST(Decoder, EmptyModule) {
  Module m = decode_module(test::wat_to_wasm("(module)"));
  EXPECT_EQ(m.bytes.size(), 8u);
  EXPECT_TRUE(m.types.empty());
  EXPECT_TRUE(m.functions.empty());
  EXPECT_FALSE(m.start.has_value());
  EXPECT_FALSE(m.data_count.has_value());
}

TEST(Decoder, TypesImportsAndIndexSpaces) {
  Module m = decode_module(test::wat_to_wasm(R"(
    (module
      (type (func (param i32 i64) (result f32)))
      (type (func (param f64 funcref externref)))
      (import "env" "f" (func (type 1)))
      (import "env" "t" (table 2 10 funcref))
      (import "env" "m" (memory 1 2))
      (import "env" "g" (global (mut i64)))
      (func (type 0) (f32.const 0))
      (table 3 externref)
      (global f64 (f64.const 1.5)))
  )"));
  ASSERT_EQ(m.types.size(), 2u);
  EXPECT_EQ(m.types[0], (FuncType{{ValType::I32, ValType::I64}, {ValType::F32}}));
  EXPECT_EQ(m.types[1], (FuncType{{ValType::F64, ValType::FuncRef, ValType::ExternRef}, {}}));

  ASSERT_EQ(m.imports.size(), 4u);
  EXPECT_EQ(m.imports[0].module, "env");
  EXPECT_EQ(m.imports[0].name, "f");
  EXPECT_EQ(m.imports[0].kind, ExternKind::Func);
  EXPECT_EQ(m.imports[0].func_type, 1u);
  EXPECT_EQ(m.imports[1].kind, ExternKind::Table);
  EXPECT_EQ(m.imports[1].table.limits, (Limits{2, 10, false}));
  EXPECT_EQ(m.imports[2].kind, ExternKind::Memory);
  EXPECT_EQ(m.imports[2].memory.limits, (Limits{1, 2, false}));
  EXPECT_EQ(m.imports[3].kind, ExternKind::Global);
  EXPECT_EQ(m.imports[3].global.type, ValType::I64);
  EXPECT_TRUE(m.imports[3].global.mut);

  // Index spaces: imports first.
  EXPECT_EQ(m.func_types, (std::vector<uint32_t>{1, 0}));
  EXPECT_EQ(m.num_imported_funcs, 1u);
  EXPECT_TRUE(m.is_imported_func(0));
  EXPECT_FALSE(m.is_imported_func(1));
  EXPECT_EQ(m.func_type(1).results, std::vector<ValType>{ValType::F32});
  ASSERT_EQ(m.tables.size(), 2u);
  EXPECT_EQ(m.num_imported_tables, 1u);
  EXPECT_EQ(m.tables[1].elem, ValType::ExternRef);
  EXPECT_EQ(m.tables[1].limits, (Limits{3, std::nullopt, false}));
  EXPECT_EQ(m.memories.size(), 1u);
  EXPECT_EQ(m.num_imported_memories, 1u);
  ASSERT_EQ(m.global_types.size(), 2u);
  EXPECT_EQ(m.num_imported_globals, 1u);
  EXPECT_EQ(m.global_types[1].type, ValType::F64);
  EXPECT_FALSE(m.global_types[1].mut);
  ASSERT_EQ(m.globals.size(), 1u);
  ASSERT_EQ(m.globals[0].init.instrs.size(), 1u);
  EXPECT_EQ(m.globals[0].init.instrs[0].op, Op::F64Const);
  EXPECT_EQ(m.globals[0].init.instrs[0].imm, 0x3FF8000000000000u); // 1.5
}

TEST(Decoder, FunctionLocalsAndBodyRange) {
  Module m = decode_module(test::wat_to_wasm(R"(
    (module
      (func (param i32) (local i64 i64 f32) (local.get 0) (drop))
      (func))
  )"));
  ASSERT_EQ(m.functions.size(), 2u);
  const Function& f = m.functions[0];
  EXPECT_EQ(f.type_index, 0u);
  EXPECT_EQ(std::vector<ValType>(f.locals.begin(), f.locals.end()),
            (std::vector<ValType>{ValType::I64, ValType::I64, ValType::F32}));
  // local.get 0; drop; end
  ASSERT_EQ(f.body_end - f.body_begin, 4u);
  EXPECT_EQ(m.bytes[f.body_begin], 0x20);
  EXPECT_EQ(m.bytes[f.body_end - 1], 0x0B);
  EXPECT_TRUE(m.functions[1].locals.empty());
  EXPECT_EQ(m.functions[1].body_end - m.functions[1].body_begin, 1u); // just `end`
}

TEST(Decoder, ExportsAndStart) {
  Module m = decode_module(test::wat_to_wasm(R"(
    (module
      (func $f) (memory 1) (table 1 funcref) (global i32 (i32.const 0))
      (export "run" (func $f)) (export "mem" (memory 0))
      (export "tab" (table 0)) (export "glob" (global 0))
      (start $f))
  )"));
  ASSERT_EQ(m.exports.size(), 4u);
  const Export* mem = m.find_export("mem");
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->kind, ExternKind::Memory);
  EXPECT_EQ(m.find_export("glob")->kind, ExternKind::Global);
  EXPECT_EQ(m.find_export("tab")->kind, ExternKind::Table);
  EXPECT_EQ(m.find_export("run")->kind, ExternKind::Func);
  EXPECT_EQ(m.find_export("nope"), nullptr);
  EXPECT_EQ(m.start, 0u);
}

TEST(Decoder, DataSegmentsAndDataCount) {
  Module m = decode_module(test::wat_to_wasm(R"(
    (module
      (memory 1)
      (data (i32.const 16) "hi")
      (data "passive!")
      (func (data.drop 1)))
  )"));
  ASSERT_EQ(m.datas.size(), 2u);
  EXPECT_EQ(m.data_count, 2u);
  const DataSegment& active = m.datas[0];
  EXPECT_EQ(active.mode, SegmentMode::Active);
  EXPECT_EQ(active.memory, 0u);
  ASSERT_EQ(active.offset.instrs.size(), 1u);
  EXPECT_EQ(active.offset.instrs[0].op, Op::I32Const);
  EXPECT_EQ(active.offset.instrs[0].imm, 16u);
  auto hi = m.data_bytes(active);
  EXPECT_EQ(std::string(hi.begin(), hi.end()), "hi");
  EXPECT_EQ(m.datas[1].mode, SegmentMode::Passive);
  auto passive = m.data_bytes(m.datas[1]);
  EXPECT_EQ(std::string(passive.begin(), passive.end()), "passive!");
}

TEST(Decoder, DataSegmentWithExplicitMemoryIndex) {
  // flags 2: memory index, offset, bytes.
  Bytes bytes = module({section(5, {0x01, 0x00, 0x01}),
                        section(11, {0x01, 0x02, 0x00, 0x41, 0x05, 0x0B, 0x01, 'x'})});
  Module m = decode_module(bytes);
  ASSERT_EQ(m.datas.size(), 1u);
  EXPECT_EQ(m.datas[0].mode, SegmentMode::Active);
  EXPECT_EQ(m.datas[0].offset.instrs[0].imm, 5u);
  EXPECT_EQ(m.datas[0].size, 1u);
  EXPECT_EQ(m.bytes[m.datas[0].begin], 'x');
}

// One element section holding a segment of each of the 8 encodings.
TEST(Decoder, ElementSegmentsAllEncodings) {
  Bytes i32_const_1 = {0x41, 0x01, 0x0B};
  Bytes ref_func_0 = {0xD2, 0x00, 0x0B};
  Bytes ref_null_func = {0xD0, 0x70, 0x0B};
  Bytes elems = cat({{0x08},
                     {0x00},
                     i32_const_1,
                     {0x01, 0x00},                   // 0
                     {0x01, 0x00, 0x02, 0x00, 0x00}, // 1
                     {0x02, 0x01},
                     i32_const_1,
                     {0x00, 0x01, 0x00},       // 2
                     {0x03, 0x00, 0x01, 0x00}, // 3
                     {0x04},
                     i32_const_1,
                     {0x02},
                     ref_func_0,
                     ref_null_func, // 4
                     {0x05, 0x6F, 0x01},
                     {0xD0, 0x6F, 0x0B}, // 5
                     {0x06, 0x01},
                     i32_const_1,
                     {0x70, 0x01},
                     ref_func_0, // 6
                     {0x07, 0x70, 0x01},
                     ref_func_0}); // 7
  Bytes bytes = module({kTypeVoid, kOneFunc, section(4, {0x02, 0x70, 0x00, 0x01, 0x70, 0x00, 0x01}),
                        section(9, elems), kEmptyBody});
  Module m = decode_module(bytes);
  ASSERT_EQ(m.elems.size(), 8u);

  const SegmentMode kModes[8] = {
      SegmentMode::Active, SegmentMode::Passive, SegmentMode::Active, SegmentMode::Declarative,
      SegmentMode::Active, SegmentMode::Passive, SegmentMode::Active, SegmentMode::Declarative};
  const uint32_t kTables[8] = {0, 0, 1, 0, 0, 0, 1, 0};
  const size_t kItems[8] = {1, 2, 1, 1, 2, 1, 1, 1};
  for (int i = 0; i < 8; ++i) {
    SCOPED_TRACE("encoding " + std::to_string(i));
    const ElemSegment& seg = m.elems[i];
    EXPECT_EQ(seg.mode, kModes[i]);
    EXPECT_EQ(seg.items.size(), kItems[i]);
    if (seg.mode == SegmentMode::Active) {
      EXPECT_EQ(seg.table, kTables[i]);
      ASSERT_EQ(seg.offset.instrs.size(), 1u);
      EXPECT_EQ(seg.offset.instrs[0].op, Op::I32Const);
      EXPECT_EQ(seg.offset.instrs[0].imm, 1u);
    }
    EXPECT_EQ(seg.type, i == 5 ? ValType::ExternRef : ValType::FuncRef);
    // Every item is a one-instruction expression without its `end`; the
    // function-index forms (0-3) become ref.func.
    for (const ConstExpr& item : seg.items) {
      ASSERT_EQ(item.instrs.size(), 1u);
      if (i < 4) {
        EXPECT_EQ(item.instrs[0].op, Op::RefFunc);
      }
    }
  }
  EXPECT_EQ(m.elems[0].items[0].instrs[0].a, 0u);
  EXPECT_EQ(m.elems[4].items[1].instrs[0].op, Op::RefNull);
  EXPECT_EQ(m.elems[5].items[0].instrs[0].type, ValType::ExternRef);
  // The ref.func item of encoding 0 sits right after its offset expression.
  const ConstExpr& item = m.elems[0].items[0];
  EXPECT_EQ(item.offset, m.elems[0].offset.offset + i32_const_1.size() + 1);
  EXPECT_EQ(item.instrs[0].offset, item.offset);
}

TEST(Decoder, SharedMemoryLimits) {
  Module m = decode_module(module({section(5, {0x02, 0x03, 0x01, 0x04, 0x02, 0x00})}));
  ASSERT_EQ(m.memories.size(), 2u);
  EXPECT_EQ(m.memories[0].limits, (Limits{1, 4, true}));
  // Shared without a maximum decodes; the validator rejects it.
  EXPECT_EQ(m.memories[1].limits, (Limits{0, std::nullopt, true}));
}

TEST(Decoder, NameSection) {
  Module m = decode_module(test::wat_to_wasm(R"(
    (module $mod
      (import "env" "imp" (func $imp (param i32)))
      (func $add (param $a i32) (param $b i32) (result i32) (local $tmp i64) local.get $a)
      (func $other))
  )",
                                             "--debug-names"));
  EXPECT_EQ(m.names.module, "mod");
  EXPECT_EQ(m.names.functions,
            (std::map<uint32_t, std::string>{{0, "imp"}, {1, "add"}, {2, "other"}}));
  ASSERT_TRUE(m.names.locals.contains(1));
  EXPECT_EQ(m.names.locals.at(1),
            (std::map<uint32_t, std::string>{{0, "a"}, {1, "b"}, {2, "tmp"}}));
  EXPECT_EQ(m.func_name(1), "add");
  ASSERT_EQ(m.customs.size(), 1u);
  EXPECT_EQ(m.customs[0].name, "name");
}

TEST(Decoder, FuncNameFallbacks) {
  Module m = decode_module(test::wat_to_wasm(R"(
    (module
      (import "env" "g" (global i32))
      (import "wasi" "fd_write" (func (param i32)))
      (func))
  )"));
  EXPECT_TRUE(m.names.functions.empty());
  EXPECT_EQ(m.func_name(0), "wasi.fd_write"); // the first *function* import
  EXPECT_EQ(m.func_name(1), "func[1]");
}

// Each of these name sections is malformed; the module still decodes and
// the names are simply absent (spec appendix 7.4).
TEST(Decoder, MalformedNameSectionIsIgnored) {
  const Bytes kBadContents[] = {
      {0x01, 0x05, 0x01, 0x00, 0x03, 'a', 'b'},             // name runs past its subsection
      {0x01, 0x04, 0x01, 0x00, 0x01, 0xFF},                 // invalid UTF-8
      {0x01, 0x07, 0x02, 0x01, 0x01, 'a', 0x00, 0x01, 'b'}, // indices not increasing
      {0x01, 0x01, 0x00, 0x00, 0x01, 0x00},                 // subsections out of order
      {0x00, 0x03, 0x01, 'm', 0xEE},                        // trailing byte in a subsection
      {0x00, 0x01, 0x01, 'm', 0x01, 'x', 0x00},             // name longer than its subsection
      {0x05},                                               // truncated subsection header
  };
  for (const Bytes& contents : kBadContents) {
    Bytes bytes =
        module({kTypeVoid, kOneFunc, kEmptyBody, section(0, cat({str("name"), contents}))});
    Module m = decode_module(bytes);
    EXPECT_TRUE(m.names.module.empty());
    EXPECT_TRUE(m.names.functions.empty());
    EXPECT_TRUE(m.names.locals.empty());
    ASSERT_EQ(m.customs.size(), 1u);
    EXPECT_EQ(m.customs[0].size, contents.size());
    EXPECT_EQ(m.func_name(0), "func[0]");
  }
}

TEST(Decoder, UnknownNameSubsectionsAreSkipped) {
  Bytes contents = cat({
      {0x00, 0x02, 0x01, 'm'},        // module name "m"
      {0x07, 0x03, 0xAA, 0xBB, 0xCC}, // a later subsection id
  });
  Module m = decode_module(module({section(0, cat({str("name"), contents}))}));
  EXPECT_EQ(m.names.module, "m");
}

TEST(Decoder, CustomSectionsAnywhere) {
  Bytes bytes = module({section(0, cat({str("first"), {1, 2, 3}})), kTypeVoid,
                        section(0, cat({str("mid"), {}})), kOneFunc, kEmptyBody,
                        section(0, cat({str("last"), {9}}))});
  Module m = decode_module(bytes);
  ASSERT_EQ(m.customs.size(), 3u);
  EXPECT_EQ(m.customs[0].name, "first");
  EXPECT_EQ(m.customs[0].size, 3u);
  EXPECT_EQ(m.bytes[m.customs[0].begin], 1);
  EXPECT_EQ(m.customs[0].begin, 8u + 2 + 6); // header, id+size, "first" with its length
  EXPECT_EQ(m.customs[1].size, 0u);
  EXPECT_EQ(m.bytes[m.customs[2].begin], 9);
}

TEST(Decoder, LocalsUpToTheLimit) {
  // 25000 + 25000 declared locals: exactly the cap.
  Bytes body = cat({{0x02}, uleb(25000), {0x7F}, uleb(25000), {0x7E}, {0x0B}});
  Module m = decode_module(
      module({kTypeVoid, kOneFunc, section(10, cat({{0x01}, uleb(body.size()), body}))}));
  EXPECT_EQ(m.functions[0].locals.size(), 50000u);
  EXPECT_EQ(m.functions[0].locals.back(), ValType::I64);
}

// ------------------------------------------------------------ malformed ----

TEST(DecoderMalformed, Header) {
  EXPECT_MALFORMED(Bytes{}, "unexpected end of section or function", 0);
  EXPECT_MALFORMED((Bytes{0x00, 0x61, 0x73}), "unexpected end of section or function", 0);
  EXPECT_MALFORMED((Bytes{0x00, 0x61, 0x73, 0x6D, 0x01}), "unexpected end of section or function",
                   4);
  EXPECT_MALFORMED((Bytes{'a', 's', 'm', 0x00, 0x01, 0, 0, 0}), "magic header not detected", 0);
  EXPECT_MALFORMED((Bytes{0x00, 0x61, 0x73, 0x6D, 0x02, 0, 0, 0}), "unknown binary version", 4);
}

TEST(DecoderMalformed, SectionFraming) {
  // (13 is exception handling's tag section: DecoderProposals.)
  EXPECT_MALFORMED(module({{0x0E, 0x00}}), "malformed section id", 8);
  EXPECT_MALFORMED(module({{0x80, 0x00}}), "malformed section id", 8);
  // Size larger than the rest of the module.
  EXPECT_MALFORMED(module({{0x01, 0x07, 0x02, 0x60, 0x00, 0x00}}), "length out of bounds", 9);
  // Contents shorter than the size: the second type is not there.
  EXPECT_MALFORMED(module({{0x01, 0x05, 0x01, 0x60, 0x00, 0x00, 0x00}}), "section size mismatch",
                   10);
  // Contents longer than the size.
  EXPECT_MALFORMED(module({{0x01, 0x03, 0x01, 0x60, 0x00, 0x00}}), "section size mismatch", 10);
  // A section cut off by the end of the module.
  EXPECT_MALFORMED(module({{0x01}}), "unexpected end of section or function", 9);
}

TEST(DecoderMalformed, SectionOrder) {
  const char* kMsg = "unexpected content after last section";
  EXPECT_MALFORMED(module({kTypeVoid, kTypeVoid}), kMsg, 14);
  EXPECT_MALFORMED(module({section(3, {0x00}), section(2, {0x00})}), kMsg, 11);
  // Data count comes before code, code before data.
  EXPECT_MALFORMED(module({section(10, {0x00}), section(12, {0x00})}), kMsg, 11);
  EXPECT_MALFORMED(module({section(11, {0x00}), section(10, {0x00})}), kMsg, 11);
  Module m = decode_module(module({section(12, {0x00}), section(10, {0x00}), section(11, {0x00})}));
  EXPECT_EQ(m.data_count, 0u);
}

TEST(DecoderMalformed, Leb128) {
  // Memory minimum as a 6-byte LEB128.
  EXPECT_MALFORMED(module({section(5, {0x01, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00})}),
                   "integer representation too long", 17);
  // Memory minimum with bits beyond 32.
  EXPECT_MALFORMED(module({section(5, {0x01, 0x00, 0x80, 0x80, 0x80, 0x80, 0x10})}),
                   "integer too large", 17);
  // i32.const with unused bits that are not sign bits.
  EXPECT_MALFORMED(
      module({section(6, {0x01, 0x7F, 0x00, 0x41, 0x80, 0x80, 0x80, 0x80, 0x70, 0x0B})}),
      "integer too large", 19);
}

TEST(DecoderMalformed, Names) {
  // Import module name with an invalid UTF-8 byte; offset of the name's bytes.
  EXPECT_MALFORMED(module({section(2, {0x01, 0x01, 0xFF, 0x00, 0x00, 0x00})}),
                   "malformed UTF-8 encoding", 12);
  // Export name longer than the module.
  EXPECT_MALFORMED(module({section(7, {0x01, 0x09, 'a'})}), "length out of bounds", 12);
  // Custom section name invalid UTF-8 (overlong encoding of '/').
  EXPECT_MALFORMED(module({section(0, {0x02, 0xC0, 0xAF})}), "malformed UTF-8 encoding", 11);
}

// Names are checked eight ASCII bytes at a time (reader.cpp): a multi-byte
// sequence or a bad byte anywhere in or after such a run is still seen.
TEST(DecoderNames, Utf8AroundRunsOfAscii) {
  auto valid = [](std::string text) {
    return is_valid_utf8({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
  };
  EXPECT_TRUE(valid(""));
  EXPECT_TRUE(valid("abcdefghijklmnopq"));
  EXPECT_TRUE(valid("abcdefghi\xC3\xA9jklmnopqr")); // é after 9 ASCII bytes
  EXPECT_TRUE(valid("abcdefg\xE2\x82\xAC"
                    "abcdefgh")); // € across a word boundary
  EXPECT_TRUE(valid("\xF0\x9F\x98\x80"
                    "abcdefgh\xF0\x9F\x98\x80")); // U+1F600
  EXPECT_FALSE(valid("abcdefgh\xFF"));
  EXPECT_FALSE(valid("abcd\xFF"
                     "efghijklm"));          // inside the first word
  EXPECT_FALSE(valid("abcdefghij\xC0\xAF")); // overlong '/'
  EXPECT_FALSE(valid("abcdefgh\xE2\x82"));   // cut short at the end
  EXPECT_FALSE(valid("abcdefgh\xED\xA0\x80"
                     "abcdefgh"));             // a surrogate
  EXPECT_FALSE(valid("abcdefghijklmnop\x80")); // a lone continuation byte
}

// u32 and s32 take a well-formed integer whole when 5 bytes are left
// (reader.cpp) and byte by byte otherwise: both must read the same values,
// padded encodings included, and refuse the same bytes at the same offset.
TEST(ByteReaderLeb, FastAndByteByBytePathsAgree) {
  auto uleb = [](uint64_t v, size_t min_bytes) {
    Bytes out;
    do {
      uint8_t b = v & 0x7F;
      v >>= 7;
      if (v != 0 || out.size() + 1 < min_bytes) b |= 0x80;
      out.push_back(b);
    } while (v != 0 || out.size() < min_bytes);
    return out;
  };
  auto sleb = [](int64_t v, size_t min_bytes) {
    Bytes out;
    for (;;) {
      uint8_t b = v & 0x7F;
      v >>= 7;
      bool done =
          ((v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40))) && out.size() + 1 >= min_bytes;
      if (!done) b |= 0x80;
      out.push_back(b);
      if (done) return out;
    }
  };
  for (size_t tail : {0, 5}) {
    const Bytes pad(tail, 0x00);
    for (uint32_t v : {0u, 1u, 63u, 64u, 127u, 128u, 8191u, 16384u, (1u << 21) - 1, 1u << 21,
                       (1u << 28) - 1, 1u << 28, 0xFFFFFFFFu})
      for (size_t min_bytes = 1; min_bytes <= 5; ++min_bytes) {
        Bytes enc = uleb(v, min_bytes);
        if (enc.size() > 5) continue;
        const size_t n = enc.size();
        enc.insert(enc.end(), pad.begin(), pad.end());
        ByteReader r(enc);
        EXPECT_EQ(r.u32(), v) << v << " in " << min_bytes;
        EXPECT_EQ(r.pos(), n);
      }
    for (int32_t v : {0, 1, -1, 63, 64, -64, -65, 8191, -8192, -8193, 1 << 27, -(1 << 27),
                      (1 << 27) - 1, -(1 << 27) - 1, INT32_MAX, INT32_MIN})
      for (size_t min_bytes = 1; min_bytes <= 5; ++min_bytes) {
        Bytes enc = sleb(v, min_bytes);
        if (enc.size() > 5) continue;
        const size_t n = enc.size();
        enc.insert(enc.end(), pad.begin(), pad.end());
        ByteReader r(enc);
        EXPECT_EQ(r.s32(), v) << v << " in " << min_bytes;
        EXPECT_EQ(r.pos(), n);
      }
    auto error = [&](Bytes enc, bool is_signed) -> std::string {
      enc.insert(enc.end(), pad.begin(), pad.end());
      ByteReader r(enc, 100);
      try {
        is_signed ? (void)r.s32() : (void)r.u32();
      } catch (const DecodeError& e) {
        return std::to_string(e.offset()) + " " + e.what();
      }
      return "";
    };
    EXPECT_EQ(error({0x80, 0x80, 0x80, 0x80, 0x10}, false), "105 integer too large");
    EXPECT_EQ(error({0x80, 0x80, 0x80, 0x80, 0x80}, false), "105 integer representation too long");
    EXPECT_EQ(error({0x80, 0x80, 0x80, 0x80, 0x08}, true), "105 integer too large");
    EXPECT_EQ(error({0x80, 0x80, 0x80, 0x80, 0x70}, true), "105 integer too large");
    EXPECT_EQ(error({0xFF, 0xFF, 0xFF, 0xFF, 0x77}, true), "105 integer too large");
    EXPECT_EQ(error({0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, true), "105 integer representation too long");
  }
  Bytes short_one = {0x80, 0x80};
  ByteReader r(short_one, 7);
  try {
    r.u32();
    ADD_FAILURE() << "read past the end";
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.offset(), 9u);
  }
}

TEST(DecoderMalformed, TypesAndKinds) {
  EXPECT_MALFORMED(module({section(1, {0x01, 0x61, 0x00, 0x00})}), "malformed function type", 11);
  EXPECT_MALFORMED(module({section(1, {0x01, 0xE0, 0x7F, 0x00, 0x00})}),
                   "integer representation too long", 12);
  EXPECT_MALFORMED(module({section(1, {0x01, 0x60, 0x01, 0x40, 0x00})}), "malformed value type",
                   13);
  EXPECT_MALFORMED(module({section(4, {0x01, 0x7F, 0x00, 0x00})}), "malformed reference type", 11);
  EXPECT_MALFORMED(module({section(4, {0x01, 0x70, 0x02, 0x00})}), "integer too large", 12);
  EXPECT_MALFORMED(module({section(4, {0x01, 0x70, 0x81, 0x00, 0x00})}),
                   "integer representation too long", 13);
  EXPECT_MALFORMED(module({section(5, {0x01, 0x04, 0x00})}), "integer too large", 11);
  EXPECT_MALFORMED(module({section(6, {0x01, 0x7F, 0x02, 0x41, 0x00, 0x0B})}),
                   "malformed mutability", 12);
  // Kind 4 is exception handling's tag (DecoderProposals): 5 is no kind at all.
  EXPECT_MALFORMED(module({section(2, {0x01, 0x00, 0x00, 0x05, 0x00})}), "malformed import kind",
                   13);
  EXPECT_MALFORMED(module({section(7, {0x01, 0x00, 0x05, 0x00})}), "malformed export kind", 12);
}

TEST(DecoderMalformed, ConstantExpressions) {
  // An else where the initializer's end belongs.
  EXPECT_MALFORMED(module({section(6, {0x01, 0x7F, 0x00, 0x41, 0x00, 0x05, 0x0B})}),
                   "END opcode expected", 15);
  EXPECT_MALFORMED(module({section(6, {0x01, 0x7F, 0x00, 0xFF, 0x0B})}), "illegal opcode 0xff", 13);
  // No end before the module does.
  EXPECT_MALFORMED(module({section(6, {0x01, 0x7F, 0x00, 0x41, 0x00})}),
                   "unexpected end of section or function", 15);
}

TEST(DecoderMalformed, Segments) {
  const Bytes kTable = section(4, {0x01, 0x70, 0x00, 0x00});
  EXPECT_MALFORMED(module({kTable, section(9, {0x01, 0x08})}), "malformed elements segment kind",
                   17);
  EXPECT_MALFORMED(module({kTable, section(9, {0x01, 0x01, 0x01, 0x00})}), "malformed element kind",
                   18);
  EXPECT_MALFORMED(module({kTable, section(9, {0x01, 0x05, 0x7F, 0x00})}),
                   "malformed reference type", 18);
  EXPECT_MALFORMED(module({section(11, {0x01, 0x03})}), "malformed data segment kind", 11);
  // Data bytes past the end of the module.
  EXPECT_MALFORMED(module({section(11, {0x01, 0x01, 0x03, 'a', 'b'})}),
                   "unexpected end of section or function", 13);
  EXPECT_MALFORMED(module({section(11, {0x01, 0x01, 0x09, 'a', 'b'})}), "length out of bounds", 12);
}

TEST(DecoderMalformed, SectionCountsAgree) {
  const char* kFuncCode = "function and code section have inconsistent lengths";
  EXPECT_MALFORMED(module({kTypeVoid, kOneFunc}), kFuncCode, 18);   // no code section: module end
  EXPECT_MALFORMED(module({kTypeVoid, kEmptyBody}), kFuncCode, 16); // at the code count
  EXPECT_MALFORMED(
      module({kTypeVoid, kOneFunc, section(10, {0x02, 0x02, 0x00, 0x0B, 0x02, 0x00, 0x0B})}),
      kFuncCode, 20);
  const char* kDataCount = "data count and data section have inconsistent lengths";
  EXPECT_MALFORMED(module({section(12, {0x01})}), kDataCount, 11);
  EXPECT_MALFORMED(module({section(12, {0x02}), section(11, {0x01, 0x01, 0x00})}), kDataCount, 13);
}

TEST(DecoderMalformed, FunctionBodies) {
  // 25000 + 25001 locals: one over the cap. Offset: the body's locals vector.
  Bytes body = cat({{0x02}, uleb(25000), {0x7F}, uleb(25001), {0x7E}, {0x0B}});
  EXPECT_MALFORMED(
      module({kTypeVoid, kOneFunc, section(10, cat({{0x01}, uleb(body.size()), body}))}),
      "too many locals", 22);
  // A count of 2^32 - 1 in one group.
  EXPECT_MALFORMED(
      module({kTypeVoid, kOneFunc,
              section(10, {0x01, 0x08, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x7F, 0x0B})}),
      "too many locals", 22);
  // A body whose last byte is not `end`: reported where the body stops.
  EXPECT_MALFORMED(module({kTypeVoid, kOneFunc, section(10, {0x01, 0x02, 0x00, 0x01})}),
                   "unexpected end of section or function", 24);
  // A body of no bytes at all.
  EXPECT_MALFORMED(module({kTypeVoid, kOneFunc, section(10, {0x01, 0x00})}),
                   "unexpected end of section or function", 22);
  // A local type that is not one.
  EXPECT_MALFORMED(module({kTypeVoid, kOneFunc, section(10, {0x01, 0x04, 0x01, 0x01, 0x40, 0x0B})}),
                   "malformed value type", 24);
}

// ----------------------------------------------------- unsupported proposals ----

// A module using a proposal tern lacks: an UnsupportedProposal (a
// DecodeError whose message keeps the spec's words first) naming it.
struct Unsupported {
  std::string message, proposal, construct;
  size_t offset = 0;
};

Unsupported unsupported(const Bytes& bytes) {
  try {
    Module m = decode_module(bytes);
    validate_module(m); // function bodies' instructions are read here
  } catch (const UnsupportedProposal& e) {
    return {e.what(), e.proposal(), e.construct(), e.offset()};
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an UnsupportedProposal: " << e.what();
    return {};
  }
  ADD_FAILURE() << "accepted";
  return {};
}

Bytes with_body(const Bytes& code) {
  Bytes body = cat({{0x00}, code, {0x0B}});
  return module({kTypeVoid, kOneFunc, section(10, cat({{0x01}, uleb(body.size()), body}))});
}

TEST(DecoderProposals, NamedInsteadOfMalformed) {
  struct Case {
    Bytes bytes;
    const char* spec_message; // what WebAssembly 2.0 calls it, kept first
    const char* proposal;
    const char* construct;
    size_t offset;
  };
  const Case cases[] = {
      {with_body(cat({{0xFD, 0x0C}, Bytes(16, 0), {0x1A}})), "illegal opcode 0xfd", "SIMD",
       "instruction prefix 0xfd", 23},
      {with_body({0x06, 0x40, 0x0B}), "illegal opcode 0x06", "exception handling", "try", 23},
      {with_body({0x12, 0x00}), "illegal opcode 0x12", "tail calls", "return_call", 23},
      {with_body({0x02, 0x7B, 0x00, 0x0B}), "malformed block type", "SIMD", "value type v128", 24},
      {module({kTypeVoid, kOneFunc, section(10, {0x01, 0x04, 0x01, 0x01, 0x7B, 0x0B})}),
       "malformed value type", "SIMD", "value type v128", 24},
      {module({section(13, {0x00})}), "malformed section id", "exception handling",
       "tag section (id 13)", 8},
      {module({section(2, cat({{0x01}, str("m"), str("t"), {0x04, 0x00, 0x00}}))}),
       "malformed import kind", "exception handling", "tag import or export (kind 4)", 15},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.construct);
    const Unsupported u = unsupported(c.bytes);
    EXPECT_EQ(u.message.rfind(c.spec_message, 0), 0u) << u.message;
    EXPECT_NE(u.message.find(std::string("the ") + c.proposal + " proposal is not supported yet"),
              std::string::npos)
        << u.message;
    EXPECT_EQ(u.proposal, c.proposal);
    EXPECT_EQ(u.construct, c.construct);
    EXPECT_EQ(u.offset, c.offset);
  }
  // Bytes no proposal uses stay plainly malformed.
  EXPECT_MALFORMED(module({section(14, {0x00})}), "malformed section id", 8);
}

// Cutting a valid module anywhere, or changing any one byte, gives a
// DecodeError or a module, never anything else (nor a crash under ASan).
TEST(DecoderMalformed, TruncationsAndByteFlipsAreHandled) {
  Bytes valid = test::wat_to_wasm(R"(
    (module $m
      (type (func (param i32) (result i32)))
      (import "env" "f" (func (type 0)))
      (import "env" "mem" (memory 1))
      (table 2 funcref)
      (global (mut i32) (i32.const 7))
      (func $g (type 0) (local i64) (local.get 0))
      (export "g" (func $g))
      (elem (i32.const 0) $g)
      (elem declare func $g)
      (data (i32.const 0) "abc")
      (data "xyz")
      (func (data.drop 1)))
  )",
                                  "--debug-names");
  ASSERT_NO_THROW(decode_module(valid));
  for (size_t len = 0; len < valid.size(); ++len) {
    Bytes cut(valid.begin(), valid.begin() + len);
    try {
      decode_module(cut);
    } catch (const DecodeError& e) {
      EXPECT_LE(e.offset(), len);
    }
  }
  for (size_t i = 0; i < valid.size(); ++i) {
    for (uint8_t v : {0x00, 0x01, 0x7F, 0x80, 0xFF}) {
      Bytes changed = valid;
      changed[i] = v;
      try {
        decode_module(changed);
      } catch (const DecodeError& e) {
        EXPECT_LE(e.offset(), changed.size());
      }
    }
  }
}

TEST(Types, ToString) {
  EXPECT_EQ(to_string(ValType::I32), "i32");
  EXPECT_EQ(to_string(ValType::ExternRef), "externref");
  EXPECT_EQ(to_string(FuncType{{ValType::I32, ValType::F64}, {ValType::I64}}),
            "[i32 f64] -> [i64]");
  EXPECT_EQ(to_string(FuncType{}), "[] -> []");
  EXPECT_EQ(to_string(ExternKind::Memory), "memory");
}

TEST(FunctionInfo, FindStablePointByOffset) {
  FunctionInfo info;
  const StablePoint points[] = {{10, StablePointKind::FunctionEntry, 0, 0},
                                {14, StablePointKind::LoopHeader, 1, 0},
                                {30, StablePointKind::CallSite, 2, 1}};
  const ValType types_pool[] = {ValType::I32, ValType::I64, ValType::F32};
  info.stable_points = points;
  info.stack_types = types_pool;
  ASSERT_NE(info.find(14), nullptr);
  EXPECT_EQ(info.find(14)->kind, StablePointKind::LoopHeader);
  EXPECT_EQ(info.find(30)->stack_height, 2u);
  EXPECT_EQ(info.find(11), nullptr);
  EXPECT_EQ(info.find(31), nullptr);
  EXPECT_EQ(info.find(0), nullptr);
  auto types = info.types_at(*info.find(30));
  EXPECT_EQ(std::vector<ValType>(types.begin(), types.end()),
            (std::vector<ValType>{ValType::I64, ValType::F32}));
}

} // namespace
} // namespace tern::wasm
