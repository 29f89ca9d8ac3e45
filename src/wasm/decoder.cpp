// The binary format, section by section (WebAssembly 2.0, chapter 5).
//
// Like the spec's reference interpreter, sections are read from one reader
// over the whole module and each section's declared size is checked when its
// contents have been read ("section size mismatch"); error texts are the
// reference interpreter's, which the spec tests match by prefix. Function
// bodies are only delimited here (locals decoded, byte range recorded); the
// validator decodes their instructions.
#include "wasm/decoder.h"

#include "wasm/instr.h"
#include "wasm/proposals.h"
#include "wasm/reader.h"

#include <algorithm>
#include <limits>

namespace tern::wasm {
namespace {

enum SectionId : uint8_t {
  kCustom = 0,
  kType = 1,
  kImport = 2,
  kFunction = 3,
  kTable = 4,
  kMemory = 5,
  kGlobal = 6,
  kExport = 7,
  kStart = 8,
  kElem = 9,
  kCode = 10,
  kData = 11,
  kDataCount = 12,
};

// Where each non-custom section must appear: data count sits between the
// element and code sections although its id is the largest.
int section_rank(uint8_t id) {
  switch (id) {
  case kDataCount:
    return kCode;
  case kCode:
    return kCode + 1;
  case kData:
    return kCode + 2;
  default:
    return id;
  }
}

// wasmtime's limit; it bounds the frame the interpreter allocates per call.
constexpr uint64_t kMaxLocals = 50000;

// A length or vector count. As in the reference interpreter, it is "out of
// bounds" when it exceeds every byte left in the reader counting from the
// length's own first byte; anything smaller fails later, when the bytes run
// out. Each vector element takes at least one byte, so a count that passes
// bounds what the caller may allocate by the input size.
uint32_t length(ByteReader& r) {
  size_t start = r.offset();
  size_t left = r.remaining();
  uint32_t n = r.u32();
  if (n > left) r.fail_at(start, "length out of bounds");
  return n;
}

// A flags field the spec encodes as an unsigned LEB128 integer of a few bits:
// it must fit in one byte and not exceed `max`.
uint8_t small_flags(ByteReader& r, uint8_t max) {
  size_t start = r.offset();
  uint8_t b = r.u8();
  if (b & 0x80) r.fail("integer representation too long");
  if (b > max) r.fail_at(start, "integer too large");
  return b;
}

std::vector<ValType> result_types(ByteReader& r) {
  uint32_t n = length(r);
  std::vector<ValType> types;
  for (uint32_t i = 0; i < n; ++i) types.push_back(read_value_type(r));
  return types;
}

FuncType func_type(ByteReader& r) {
  size_t start = r.offset();
  uint8_t form = r.u8();
  // The form is a one-byte signed LEB128 (-0x20) in the reference decoder.
  if (form & 0x80) r.fail("integer representation too long");
  if (form != 0x60) refuse(Encoding::TypeForm, form, start, "malformed function type");
  FuncType t;
  t.params = result_types(r);
  t.results = result_types(r);
  return t;
}

// Memories may be shared (threads proposal: flags 2 and 3); tables may not.
Limits limits(ByteReader& r, uint8_t max_flags) {
  uint8_t flags = small_flags(r, max_flags);
  Limits l;
  l.min = r.u32();
  if (flags & 1) l.max = r.u32();
  l.shared = (flags & 2) != 0;
  return l;
}

TableType table_type(ByteReader& r) {
  TableType t;
  t.elem = read_ref_type(r);
  t.limits = limits(r, 1);
  return t;
}

MemoryType memory_type(ByteReader& r) {
  return MemoryType{limits(r, 3)};
}

GlobalType global_type(ByteReader& r) {
  GlobalType g;
  g.type = read_value_type(r);
  size_t start = r.offset();
  uint8_t mut = r.u8();
  if (mut > 1) r.fail_at(start, "malformed mutability");
  g.mut = mut == 1;
  return g;
}

// Instructions up to the `end` that closes the expression. Whether they are
// constant is the validator's question; nesting is tracked only to find the
// right `end`.
ConstExpr const_expr(ByteReader& r) {
  ConstExpr e;
  e.offset = static_cast<uint32_t>(r.offset());
  InstrReader ir(r);
  uint32_t depth = 0;
  Instr in;
  for (;;) {
    ir.next(in);
    if (in.op == Op::End) {
      if (depth == 0) break;
      --depth;
    } else if (in.op == Op::Else && depth == 0) {
      r.fail_at(in.offset, "END opcode expected");
    } else if (in.op == Op::Block || in.op == Op::Loop || in.op == Op::If) {
      ++depth;
    }
    e.instrs.push_back(in);
  }
  r.bytes(ir.offset() - r.offset()); // the reader copy went ahead; catch up
  return e;
}

// `ref.func i` for the function-index forms of element segments.
ConstExpr ref_func_expr(ByteReader& r) {
  ConstExpr e;
  e.offset = static_cast<uint32_t>(r.offset());
  ConstInstr in;
  in.op = Op::RefFunc;
  in.offset = e.offset;
  in.a = r.u32();
  e.instrs.push_back(in);
  return e;
}

// Parses the optional "name" custom section (spec appendix 7.4.1). Throws
// DecodeError on malformed contents; the caller then ignores the section.
class NameSectionParser {
public:
  explicit NameSectionParser(ByteReader r) : r_(r) {}

  Names parse() {
    Names names;
    int last_id = -1;
    while (!r_.at_end()) {
      uint8_t id = r_.u8();
      uint32_t size = length(r_);
      ByteReader sub = r_.sub(size);
      if (id <= last_id) sub.fail("name subsections out of order");
      last_id = id;
      if (id > kLocalNames) continue; // a later addition to the name section
      if (id == kModuleName) names.module = sub.name();
      if (id == kFunctionNames) names.functions = name_map(sub);
      if (id == kLocalNames) names.locals = indirect_name_map(sub);
      if (!sub.at_end()) sub.fail("name subsection size mismatch");
    }
    return names;
  }

private:
  enum : uint8_t { kModuleName = 0, kFunctionNames = 1, kLocalNames = 2 };

  // Indices must be strictly increasing (which also rules out duplicates).
  template <typename T, typename ReadValue>
  static std::map<uint32_t, T> sorted_map(ByteReader& r, ReadValue read_value) {
    std::map<uint32_t, T> map;
    uint32_t n = length(r);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t index = r.u32();
      if (!map.empty() && index <= map.rbegin()->first) r.fail("name map indices out of order");
      map.emplace_hint(map.end(), index, read_value(r));
    }
    return map;
  }

  static std::map<uint32_t, std::string> name_map(ByteReader& r) {
    return sorted_map<std::string>(r, [](ByteReader& rr) { return rr.name(); });
  }

  static std::map<uint32_t, std::map<uint32_t, std::string>> indirect_name_map(ByteReader& r) {
    return sorted_map<std::map<uint32_t, std::string>>(r, name_map);
  }

  ByteReader r_;
};

class Decoder {
public:
  explicit Decoder(Module& m) : m_(m), r_(m.bytes) {}

  void decode() {
    header();
    while (!r_.at_end()) section();
    check_counts_at_end();
  }

private:
  // A short header is "unexpected end"; a wrong one is named.
  void header() {
    static constexpr uint8_t kMagic[4] = {0x00, 0x61, 0x73, 0x6D}; // "\0asm"
    static constexpr uint8_t kVersion[4] = {0x01, 0x00, 0x00, 0x00};
    if (!std::ranges::equal(r_.bytes(4), kMagic)) r_.fail_at(0, "magic header not detected");
    if (!std::ranges::equal(r_.bytes(4), kVersion)) r_.fail_at(4, "unknown binary version");
  }

  void section() {
    size_t start = r_.offset();
    uint8_t id = r_.u8();
    if (id > kDataCount) refuse(Encoding::Section, id, start, "malformed section id");
    if (id != kCustom) {
      // A repeated or misplaced section ends the module for the reference
      // decoder, so what follows is "after the last section".
      if (section_rank(id) <= last_rank_)
        r_.fail_at(start, "unexpected content after last section");
      last_rank_ = section_rank(id);
    }
    uint32_t size = length(r_);
    size_t begin = r_.offset();
    section_contents(id, size);
    if (r_.offset() != begin + size) r_.fail_at(begin, "section size mismatch");
  }

  void section_contents(uint8_t id, uint32_t size) {
    switch (id) {
    case kCustom:
      return custom_section(size);
    case kType:
      return type_section();
    case kImport:
      return import_section();
    case kFunction:
      return function_section();
    case kTable:
      return table_section();
    case kMemory:
      return memory_section();
    case kGlobal:
      return global_section();
    case kExport:
      return export_section();
    case kStart:
      m_.start = r_.u32();
      return;
    case kElem:
      return elem_section();
    case kDataCount:
      m_.data_count = r_.u32();
      return;
    case kCode:
      return code_section();
    case kData:
      return data_section();
    default:
      return;
    }
  }

  // Custom sections are bounded by their size: their contents are opaque.
  void custom_section(uint32_t size) {
    ByteReader contents = r_.sub(size);
    CustomSection custom;
    custom.name = contents.name();
    custom.begin = static_cast<uint32_t>(contents.offset());
    custom.size = static_cast<uint32_t>(contents.remaining());
    if (custom.name == "name" && !names_seen_) name_section(contents);
    m_.customs.push_back(std::move(custom));
  }

  // The spec appendix: a malformed name section does not make the module
  // malformed; its names are just not used.
  void name_section(ByteReader contents) {
    names_seen_ = true;
    try {
      m_.names = NameSectionParser(contents).parse();
    } catch (const DecodeError&) {
      m_.names = Names{};
    }
  }

  void type_section() {
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) m_.types.push_back(func_type(r_));
  }

  void import_section() {
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) m_.imports.push_back(import());
  }

  Import import() {
    Import im;
    im.module = r_.name();
    im.name = r_.name();
    size_t kind_offset = r_.offset();
    const uint8_t kind = r_.u8();
    switch (kind) {
    case 0:
      im.kind = ExternKind::Func;
      im.func_type = r_.u32();
      m_.func_types.push_back(im.func_type);
      ++m_.num_imported_funcs;
      break;
    case 1:
      im.kind = ExternKind::Table;
      im.table = table_type(r_);
      m_.tables.push_back(im.table);
      ++m_.num_imported_tables;
      break;
    case 2:
      im.kind = ExternKind::Memory;
      im.memory = memory_type(r_);
      m_.memories.push_back(im.memory);
      ++m_.num_imported_memories;
      break;
    case 3:
      im.kind = ExternKind::Global;
      im.global = global_type(r_);
      m_.global_types.push_back(im.global);
      ++m_.num_imported_globals;
      break;
    default:
      refuse(Encoding::ExternKind, kind, kind_offset, "malformed import kind");
    }
    return im;
  }

  void function_section() {
    uint32_t n = length(r_);
    m_.functions.reserve(n);
    m_.func_types.reserve(m_.func_types.size() + n);
    for (uint32_t i = 0; i < n; ++i) {
      Function f;
      f.type_index = r_.u32();
      m_.func_types.push_back(f.type_index);
      m_.functions.push_back(std::move(f));
    }
  }

  void table_section() {
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) m_.tables.push_back(table_type(r_));
  }

  void memory_section() {
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) m_.memories.push_back(memory_type(r_));
  }

  void global_section() {
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) {
      Global g;
      g.type = global_type(r_);
      g.init = const_expr(r_);
      m_.global_types.push_back(g.type);
      m_.globals.push_back(std::move(g));
    }
  }

  void export_section() {
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) {
      Export e;
      e.name = r_.name();
      size_t kind_offset = r_.offset();
      uint8_t kind = r_.u8();
      if (kind > 3) refuse(Encoding::ExternKind, kind, kind_offset, "malformed export kind");
      e.kind = static_cast<ExternKind>(kind);
      e.index = r_.u32();
      m_.exports.push_back(std::move(e));
    }
  }

  void elem_section() {
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) m_.elems.push_back(elem_segment());
  }

  // The flags' three bits: 1 = passive or declarative (else active),
  // 2 = explicit table index (active) or declarative (otherwise),
  // 4 = items are expressions (else function indices).
  ElemSegment elem_segment() {
    size_t flags_offset = r_.offset();
    uint32_t flags = r_.u32();
    if (flags > 7) r_.fail_at(flags_offset, "malformed elements segment kind");
    ElemSegment seg;
    if (flags & 1) {
      seg.mode = (flags & 2) ? SegmentMode::Declarative : SegmentMode::Passive;
    } else {
      seg.mode = SegmentMode::Active;
      if (flags & 2) seg.table = r_.u32();
      seg.offset = const_expr(r_);
    }
    // Forms 0 and 4 imply funcref; the others state the kind or the type.
    bool has_type = (flags & 3) != 0;
    bool exprs = (flags & 4) != 0;
    if (has_type && exprs) seg.type = read_ref_type(r_);
    if (has_type && !exprs) elem_kind(r_);
    uint32_t count = length(r_);
    seg.items.reserve(count);
    for (uint32_t i = 0; i < count; ++i)
      seg.items.push_back(exprs ? const_expr(r_) : ref_func_expr(r_));
    return seg;
  }

  // The element kind of function-index forms: only 0x00 (funcref) exists.
  static void elem_kind(ByteReader& r) {
    size_t start = r.offset();
    if (r.u8() != 0x00) r.fail_at(start, "malformed element kind");
  }

  // Bodies are matched with the function section's entries at the end, where
  // the reference decoder compares the counts (a repeated code section is
  // reported as such first). Until then a body is written into the function
  // of its index, if there is one, and its locals appended to
  // Module::local_types; the spans into it are made at the end.
  void code_section() {
    code_count_offset_ = r_.offset();
    uint32_t n = length(r_);
    num_bodies_ = n;
    locals_count_.reserve(std::min<size_t>(n, m_.functions.size()));
    for (uint32_t i = 0; i < n; ++i) function_body(i);
  }

  void function_body(uint32_t index) {
    uint32_t size = length(r_);
    ByteReader body = r_.sub(size);
    const size_t locals_before = m_.local_types.size();
    locals(body, m_.local_types);
    const auto body_begin = static_cast<uint32_t>(body.offset());
    const auto body_end = static_cast<uint32_t>(body.offset() + body.remaining());
    // The body's instructions end with the `end` that closes the function.
    if (body.at_end() || m_.bytes[body_end - 1] != 0x0B) body.fail_at(body_end, kUnexpectedEnd);
    if (index >= m_.functions.size()) { // the counts differ: refused at the end
      m_.local_types.resize(locals_before);
      return;
    }
    Function& f = m_.functions[index];
    f.body_begin = body_begin;
    f.body_end = body_end;
    locals_count_.push_back(static_cast<uint32_t>(m_.local_types.size() - locals_before));
  }

  static void locals(ByteReader& body, std::vector<ValType>& out) {
    size_t start = body.offset();
    uint32_t groups = length(body);
    uint64_t total = 0;
    for (uint32_t i = 0; i < groups; ++i) {
      uint32_t count = body.u32();
      total += count;
      if (total > kMaxLocals) body.fail_at(start, "too many locals");
      out.insert(out.end(), count, read_value_type(body));
    }
  }

  void data_section() {
    data_count_offset_ = r_.offset();
    uint32_t n = length(r_);
    for (uint32_t i = 0; i < n; ++i) m_.datas.push_back(data_segment());
  }

  DataSegment data_segment() {
    size_t flags_offset = r_.offset();
    uint32_t flags = r_.u32();
    if (flags > 2) r_.fail_at(flags_offset, "malformed data segment kind");
    DataSegment seg;
    if (flags == 1) {
      seg.mode = SegmentMode::Passive;
    } else {
      if (flags == 2) seg.memory = r_.u32();
      seg.offset = const_expr(r_);
    }
    seg.size = length(r_);
    seg.begin = static_cast<uint32_t>(r_.offset());
    r_.bytes(seg.size);
    return seg;
  }

  // Counts that two sections state, compared once both could have been seen
  // (either may be absent). Reported at the later section's count.
  void check_counts_at_end() {
    if (num_bodies_ != m_.functions.size())
      r_.fail_at(code_count_offset_.value_or(r_.offset()),
                 "function and code section have inconsistent lengths");
    const ValType* locals = m_.local_types.data();
    for (size_t i = 0; i < m_.functions.size(); ++i) {
      m_.functions[i].locals = {locals, locals_count_[i]};
      locals += locals_count_[i];
    }
    if (m_.data_count && *m_.data_count != m_.datas.size())
      r_.fail_at(data_count_offset_.value_or(r_.offset()),
                 "data count and data section have inconsistent lengths");
  }

  Module& m_;
  ByteReader r_;
  int last_rank_ = 0;
  size_t num_bodies_ = 0;              // in the code section
  std::vector<uint32_t> locals_count_; // of each function, in local_types
  std::optional<size_t> code_count_offset_;
  std::optional<size_t> data_count_offset_;
  bool names_seen_ = false;
};

} // namespace

Module decode_module(std::vector<uint8_t> bytes) {
  // Offsets are 32-bit throughout (Instr, Function, segments).
  if (bytes.size() > std::numeric_limits<uint32_t>::max())
    throw DecodeError(0, "module too large (over 4 GiB)");
  Module m;
  m.bytes = std::move(bytes);
  Decoder(m).decode();
  return m;
}

} // namespace tern::wasm
