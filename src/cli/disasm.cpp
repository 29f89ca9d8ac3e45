// `tern disasm MODULE [--func NAME|INDEX]`: the interpreter's internal code.
#include "interp/disasm.h"

#include "cli/commands.h"
#include "cli/load.h"
#include "interp/engine.h"
#include "runtime/store.h"
#include "tern/error.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace tern::cli {

void add_disasm_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("disasm", "Print the interpreter's translated code of a module");
  auto path = std::make_shared<std::string>();
  auto func = std::make_shared<std::string>();
  cmd->add_option("MODULE", *path, "WebAssembly binary (.wasm)")->required();
  cmd->add_option("--func", *func, "Only this function (export or name-section name, or index)");
  cmd->callback([path, func] {
    guarded([&] {
      auto module = load_module(*path);
      std::vector<uint32_t> type_ids;
      for (uint32_t i = 0; i < module->types.size(); ++i) type_ids.push_back(i);
      interp::CompiledModule code(*module, std::move(type_ids));
      bool found = false;
      for (const auto& f : code.funcs) {
        std::string name = module->func_name(f.func_index);
        const wasm::Export* e = func->empty() ? nullptr : module->find_export(*func);
        bool match = func->empty() || name == *func || std::to_string(f.func_index) == *func ||
                     (e && e->kind == wasm::ExternKind::Func && e->index == f.func_index);
        if (!match) continue;
        found = true;
        fmt::print(";; {}\n{}\n", name, interp::disassemble(interp::translated(f)));
      }
      if (!found) throw Error(fmt::format("no function '{}' defined in {}", *func, *path));
      return 0;
    });
  });
}

TERN_COMMAND("disasm", add_disasm_command);

} // namespace tern::cli
