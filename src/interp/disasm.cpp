// Human-readable listing of translated code (`tern disasm`), for people
// tuning the translator: handler names, operands, wasm offsets, stable points.
#include "interp/disasm.h"

#include <fmt/format.h>
#include <map>

namespace tern::interp {
namespace {

constexpr const char* kHandlerNames[] = {
#define HANDLER(name) #name,
#include "interp/handlers.def"
#undef HANDLER
};

const char* point_name(wasm::StablePointKind k) {
  switch (k) {
  case wasm::StablePointKind::FunctionEntry:
    return "function entry";
  case wasm::StablePointKind::LoopHeader:
    return "loop header";
  case wasm::StablePointKind::CallSite:
    return "call site";
  case wasm::StablePointKind::AtomicWait:
    return "atomic wait";
  }
  return "?";
}

} // namespace

std::string disassemble(const CompiledFunction& f) {
  std::map<const void*, const char*> names;
  const void* const* table = handler_table();
  for (size_t i = 0; i < size_t(Handler::Count); ++i) names[table[i]] = kHandlerNames[i];

  std::string out = fmt::format("function {}: {} params, {} locals, {} slots\n", f.func_index,
                                f.num_params, f.num_locals, f.frame_slots);
  const auto& code = f.code;
  for (size_t i = 0; i < code.size();) {
    auto it = names.find(code[i].handler);
    if (it == names.end()) { // an operand word we could not attribute
      ++i;
      continue;
    }
    if (const CodePoint* p = f.point_at_code(static_cast<uint32_t>(i)))
      out +=
          fmt::format("      ; stable point: {} at 0x{:x}\n", point_name(p->kind), p->wasm_offset);
    out += fmt::format("{:5} [0x{:05x}] {}", i, f.wasm_offset_at(static_cast<uint32_t>(i)),
                       it->second);
    size_t j = i + 1;
    // Operands run until the next word that is a handler address.
    while (j < code.size() && !names.count(code[j].handler)) {
      uint64_t w = code[j].u64;
      const Word* target = code[j].target;
      if (target >= code.data() && target < code.data() + code.size())
        out += fmt::format(" ->{}", target - code.data());
      else if (w >> 32)
        out += fmt::format(" {}|{}", uint32_t(w), uint32_t(w >> 32));
      else
        out += fmt::format(" {}", w);
      ++j;
    }
    out += '\n';
    i = j;
  }
  return out;
}

} // namespace tern::interp
