// `tern run [OPTIONS] MODULE [ARGS...]`: runs a wasm32-wasi command (its
// `_start`), or one exported function with --invoke, under WASI preview1
// with wasmtime-like options. The exit code is the program's; a trap prints
// its message and a wasm backtrace and exits with 134 (as wasmtime does).
#include "cli/checkpoint_options.h"
#include "cli/commands.h"
#include "cli/engine_mode.h"
#include "cli/load.h"
#include "cli/stats.h"
#include "program/program.h"
#include "program/supervisor.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "wasi/wasi.h"

#include <cerrno>
#include <charconv>
#include <csignal>
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
  std::vector<std::string> allow_connect, allow_bind, allow_resolve;
  std::string invoke;
  std::string stdin_path, stdout_path, stderr_path;
  std::string path_resolver = "auto";
  std::string mode = "interp";
  CheckpointCliOptions checkpoint;
  std::string stats_out;
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

wasi::ResolveMode resolve_mode(const std::string& name) {
  if (name == "auto") return wasi::ResolveMode::Auto;
  if (name == "openat2") return wasi::ResolveMode::Openat2;
  if (name == "walk") return wasi::ResolveMode::Walk;
  throw Error(fmt::format("--path-resolver {}: expected auto, openat2 or walk", name));
}

wasi::WasiOptions wasi_options(const RunOptions& o) {
  wasi::WasiOptions w;
  w.args.push_back(o.module);
  w.args.insert(w.args.end(), o.args.begin(), o.args.end());
  w.env = guest_environment(o);
  for (const auto& d : o.dirs) w.preopens.push_back(wasi::parse_dir_option(d));
  w.listen = o.listen;
  w.allow_connect = o.allow_connect;
  w.allow_bind = o.allow_bind;
  w.allow_resolve = o.allow_resolve;
  w.stdin_path = o.stdin_path;
  w.stdout_path = o.stdout_path;
  w.stderr_path = o.stderr_path;
  w.resolve_mode = resolve_mode(o.path_resolver);
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

// A WASI command under the supervisor, which takes its checkpoints.
int run_command(const RunOptions& o, std::shared_ptr<const wasm::Module> module) {
  program::CheckpointPolicy policy = checkpoint_policy(o.checkpoint);
  program::EngineSpec engine{o.mode, [&] { return make_engine_for_mode(o.mode); }};
  std::unique_ptr<program::Program> prog;
  try {
    prog = program::Program::create(module, wasi_options(o), engine);
  } catch (const runtime::InstantiationTrap& t) {
    print_trap(t.trap(), *module);
    return kTrapExitCode;
  }
  if (!module->find_export("_start"))
    throw Error(fmt::format("{}: no `_start` export (use --invoke FUNC)", o.module));
  if (!o.stats_out.empty()) prog->stop_at_stable_point(policy.at.value_or(0));
  program::SupervisedOutcome outcome = program::supervise(*prog, policy);
  int status = exit_status(outcome, *module);
  if (!o.stats_out.empty()) write_stats(o.stats_out, *prog, outcome, status);
  return status;
}

int run(const RunOptions& o) {
  auto module = load_module(o.module);
  if (o.invoke.empty()) return run_command(o, module);
  wasi::WasiContext ctx(wasi_options(o));
  runtime::Store store(make_engine_for_mode(o.mode));
  runtime::Linker linker;
  wasi::register_wasi(ctx, store, linker);
  runtime::Thread thread(store);
  std::signal(SIGPIPE, SIG_IGN); // a closed pipe is EPIPE for the guest

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
  repeatable("--dir", o->dirs, "HOST[::GUEST]",
             "Preopen host directory HOST; the program sees it as GUEST (default: HOST)");
  repeatable("--env", o->env, "K=V", "Set K=V in the program's environment; K alone copies tern's");
  cmd->add_flag("--env-inherit", o->env_inherit, "Give the program tern's whole environment");
  repeatable("--listen", o->listen, "ADDR:PORT",
             "Preopen a listening TCP socket on ADDR:PORT (fds after the --dir ones)");
  repeatable("--allow-connect", o->allow_connect, "ADDR[/PREFIX][:PORT]",
             "Let the program connect and send to matching addresses (socket extension)");
  repeatable("--allow-bind", o->allow_bind, "ADDR[/PREFIX][:PORT]",
             "Let the program bind sockets to matching addresses (socket extension)");
  repeatable("--allow-resolve", o->allow_resolve, "HOST",
             "Let the program resolve host name HOST (*.SUFFIX, or * for any)");
  cmd->add_option("--invoke", o->invoke,
                  "Call exported function FUNC with ARGS as its arguments and print its results")
      ->type_name("FUNC");
  cmd->add_option("--stdin", o->stdin_path, "Read the program's stdin from FILE")
      ->type_name("FILE");
  cmd->add_option("--stdout", o->stdout_path, "Write the program's stdout to FILE")
      ->type_name("FILE");
  cmd->add_option("--stderr", o->stderr_path, "Write the program's stderr to FILE")
      ->type_name("FILE");
  cmd->add_option("--path-resolver", o->path_resolver,
                  "How paths are kept inside --dir directories: auto, openat2 or walk")
      ->type_name("MODE");
  cmd->add_option("--mode", o->mode, "Execution engine: interp (default)")
      ->type_name("MODE")
      ->check(CLI::IsMember(engine_modes()));
  add_checkpoint_options(*cmd, o->checkpoint);
  cmd->add_option("--stats-out", o->stats_out,
                  "At the end, write JSON to FILE: stable points executed, memory sha256, "
                  "exit status (for tests)")
      ->type_name("FILE");
  cmd->add_option("MODULE", o->module, "WebAssembly binary (.wasm)")->required()->type_name("");
  cmd->add_option("ARGS", o->args, "Arguments for the program (argv[1...])")->type_name("");
  cmd->positionals_at_end();
  cmd->callback([o] { guarded([&] { return run(*o); }); });
}

TERN_COMMAND("run", add_run_command);

} // namespace tern::cli
