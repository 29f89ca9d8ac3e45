// `tern run [OPTIONS] MODULE [ARGS...]`: runs a wasm32-wasi command (its
// `_start`), or one exported function with --invoke, under WASI preview1
// with wasmtime-like options. The exit code is the program's; a trap prints
// its message and a wasm backtrace and exits with 134 (as wasmtime does).
#include "cli/commands.h"
#include "cli/host_options.h"
#include "cli/load.h"
#include "program/program.h"
#include "program/signals.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "wasi/wasi.h"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fmt/format.h>

extern char** environ;

namespace tern::cli {
namespace {

struct RunOptions {
  std::string module;
  std::vector<std::string> args;
  std::vector<std::string> dirs;
  std::vector<std::string> env;
  bool env_inherit = false;
  std::vector<std::string> listen;
  std::string invoke;
  HostCliOptions host;
};

// --env K=V sets, --env K copies tern's own K; later settings win.
std::vector<std::string> guest_environment(const RunOptions& o) {
  std::vector<std::string> env;
  auto set = [&env](const std::string& kv) {
    std::string key = kv.substr(0, kv.find('='));
    for (auto& existing : env) {
      if (existing.compare(0, key.size() + 1, key + "=") == 0) {
        existing = kv;
        return;
      }
    }
    env.push_back(kv);
  };
  if (o.env_inherit)
    for (char** e = environ; *e; ++e) set(*e);
  for (const auto& kv : o.env) {
    if (kv.empty() || kv[0] == '=') throw Error(fmt::format("--env {}: expected K=V", kv));
    if (kv.find('=') != std::string::npos) {
      set(kv);
    } else if (const char* value = std::getenv(kv.c_str())) {
      set(kv + "=" + value);
    }
  }
  return env;
}

wasi::WasiOptions wasi_options(const RunOptions& o) {
  wasi::WasiOptions w;
  w.args.push_back(o.module);
  w.args.insert(w.args.end(), o.args.begin(), o.args.end());
  w.env = guest_environment(o);
  for (const auto& d : o.dirs) w.preopens.push_back(wasi::parse_dir_option(d));
  w.listen = o.listen;
  apply_host_options(o.host, w);
  return w;
}

// "--invoke f 1 2.5": the program arguments become the function's
// arguments, parsed by its parameter types.
runtime::Slot parse_arg(const std::string& text, wasm::ValType type) {
  auto fail = [&] {
    return Error(fmt::format("--invoke: cannot read '{}' as {}", text, wasm::to_string(type)));
  };
  const char* end = text.data() + text.size();
  if (type == wasm::ValType::I32 || type == wasm::ValType::I64) {
    int64_t v = 0;
    uint64_t u = 0;
    if (std::from_chars(text.data(), end, v).ptr == end)
      u = uint64_t(v);
    else if (std::from_chars(text.data(), end, u).ptr != end)
      throw fail();
    return type == wasm::ValType::I32 ? runtime::Slot(uint32_t(u)) : runtime::Slot(u);
  }
  if (type == wasm::ValType::F32 || type == wasm::ValType::F64) {
    char* stop = nullptr;
    double d = std::strtod(text.c_str(), &stop);
    if (text.empty() || stop != end) throw fail();
    return type == wasm::ValType::F32 ? runtime::Value::f32(float(d)).bits
                                      : runtime::Value::f64(d).bits;
  }
  throw Error(
      fmt::format("--invoke: parameters of type {} are not supported", wasm::to_string(type)));
}

// Runs `func` and turns its outcome into tern's exit code.
int finish(runtime::Store& store, runtime::Thread& thread, runtime::FunctionInstance* func,
           std::vector<runtime::Slot> args, bool print_results, const wasm::Module& module) {
  // Never a null data() even when empty: engines may memcpy from and to them.
  args.reserve(1);
  std::vector<runtime::Slot> results;
  results.reserve(1);
  results.resize(func->type->results.size());
  runtime::ExecOutcome out = store.engine().call(thread, func, args, results);
  switch (out.kind) {
  case runtime::ExecOutcome::Kind::Returned:
    if (print_results) {
      for (size_t i = 0; i < results.size(); ++i)
        fmt::print("{}\n", runtime::to_string({func->type->results[i], results[i]}));
    }
    return 0;
  case runtime::ExecOutcome::Kind::Exited:
    return out.exit_code;
  case runtime::ExecOutcome::Kind::Trapped:
    print_trap(out.trap, module);
    return kTrapExitCode;
  case runtime::ExecOutcome::Kind::Suspended:
    throw Error("the program stopped for a checkpoint, but `tern run` takes none");
  }
  return 1;
}

// A WASI command under the supervisor, which takes its checkpoints. The
// supervisor comes first: a checkpoint request may arrive while the module
// is still being read.
int run_command(const RunOptions& o) {
  auto supervisor = make_supervisor(o.host);
  auto module = load_module(o.module);
  std::unique_ptr<program::Program> prog;
  try {
    prog = program::Program::create(module, wasi_options(o), engine_spec(o.host),
                                    gateway_participants(o.host, GatewayUse::Run));
  } catch (const runtime::InstantiationTrap& t) {
    print_trap(t.trap(), *module);
    return kTrapExitCode;
  }
  if (!module->find_export("_start"))
    throw Error(fmt::format("{}: no `_start` export (use --invoke FUNC)", o.module));
  return supervise_and_report(*prog, *supervisor, o.host);
}

// --invoke: one exported function, without checkpoints.
int invoke(const RunOptions& o) {
  if (!o.host.gateway.empty())
    throw Error("--gateway serves a WASI command's connections: it does not go with --invoke");
  program::install_signal_triggers({}, false);
  auto module = load_module(o.module);
  wasi::WasiContext ctx(wasi_options(o));
  runtime::Store store(make_engine_for_mode(o.host.engine));
  runtime::Linker linker;
  wasi::register_wasi(ctx, store, linker, *module);
  runtime::Thread thread(store);

  auto imports = linker.resolve(*module);
  runtime::ModuleInstance* instance = nullptr;
  try {
    instance = store.instantiate(module, imports, thread);
  } catch (const runtime::InstantiationTrap& t) {
    print_trap(t.trap(), *module);
    return kTrapExitCode;
  }

  // A reactor initializes itself before any other export is called.
  if (auto* init = instance->find_func_export("_initialize")) {
    if (int code = finish(store, thread, init, {}, false, *module); code != 0) return code;
  }
  runtime::FunctionInstance* func = instance->find_func_export(o.invoke);
  if (!func) throw Error(fmt::format("{}: no exported function `{}`", o.module, o.invoke));
  const auto& params = func->type->params;
  if (o.args.size() != params.size())
    throw Error(fmt::format("--invoke {}: expects {} argument(s), got {}", o.invoke, params.size(),
                            o.args.size()));
  std::vector<runtime::Slot> args;
  for (size_t i = 0; i < params.size(); ++i) args.push_back(parse_arg(o.args[i], params[i]));
  return finish(store, thread, func, std::move(args), true, *module);
}

} // namespace

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run a WebAssembly program (wasm32-wasi command)");
  auto o = std::make_shared<RunOptions>();
  auto repeatable = [&](const char* name, std::vector<std::string>& into, const char* type,
                        const char* help) {
    cmd->add_option(name, into, help)->allow_extra_args(false)->type_size(1)->type_name(type);
  };
  add_engine_and_stream_options(*cmd, o->host);
  repeatable("--dir", o->dirs, "HOST[::GUEST]",
             "Preopen host directory HOST; the program sees it as GUEST (default: HOST)");
  repeatable("--env", o->env, "K=V", "Set K=V in the program's environment; K alone copies tern's");
  cmd->add_flag("--env-inherit", o->env_inherit, "Give the program tern's whole environment");
  repeatable("--listen", o->listen, "ADDR:PORT",
             "Preopen a listening TCP socket on ADDR:PORT (fds after the --dir ones)");
  add_sandbox_options(*cmd, o->host);
  add_gateway_options(*cmd, o->host, GatewayUse::Run);
  cmd->add_option("--invoke", o->invoke,
                  "Call exported function FUNC with ARGS as its arguments and print its results")
      ->type_name("FUNC");
  add_checkpoint_and_stats_options(*cmd, o->host);
  cmd->add_option("MODULE", o->module, "WebAssembly binary (.wasm)")->required()->type_name("");
  cmd->add_option("ARGS", o->args, "Arguments for the program (argv[1...])")->type_name("");
  cmd->positionals_at_end();
  cmd->callback([o] { guarded([&] { return o->invoke.empty() ? run_command(*o) : invoke(*o); }); });
}

TERN_COMMAND("run", add_run_command);

} // namespace tern::cli
