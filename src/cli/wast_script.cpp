#include "cli/wast_script.h"

#include "cli/engine_mode.h"
#include "cli/spectest.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/file.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>
#include <vector>

namespace tern::cli {
namespace {

using nlohmann::json;
using runtime::ExecOutcome;
using runtime::Slot;
using runtime::Value;
using wasm::ValType;

// ---- Reading wast2json's JSON ---------------------------------------------

std::string string_field(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string())
    throw Error(fmt::format("script command lacks the string field \"{}\"", key));
  return it->get<std::string>();
}

std::string optional_string_field(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t parse_u64(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || stop != end)
    throw Error(fmt::format("script value \"{}\" is not an unsigned decimal number", text));
  return value;
}

ValType parse_type(const std::string& name) {
  static const std::map<std::string, ValType> types = {
      {"i32", ValType::I32},
      {"i64", ValType::I64},
      {"f32", ValType::F32},
      {"f64", ValType::F64},
      {"v128", ValType::V128},
      {"funcref", ValType::FuncRef},
      {"externref", ValType::ExternRef},
  };
  auto it = types.find(name);
  if (it == types.end()) throw Error(fmt::format("unknown value type \"{}\" in script", name));
  return it->second;
}

bool is_32_bit(ValType t) {
  return t == ValType::I32 || t == ValType::F32;
}

// Numbers arrive as unsigned decimal strings: integers as such, floats as
// their bit patterns.
Slot parse_number_bits(ValType type, const std::string& text) {
  uint64_t bits = parse_u64(text);
  if (is_32_bit(type) && bits > 0xFFFFFFFFu)
    throw Error(fmt::format("script value {} does not fit {}", text, wasm::to_string(type)));
  return bits;
}

Value parse_arg(const json& arg) {
  ValType type = parse_type(string_field(arg, "type"));
  std::string text = string_field(arg, "value");
  if (type == ValType::V128) throw Error("v128 arguments are not supported");
  if (!wasm::is_ref(type)) return {type, parse_number_bits(type, text)};
  if (text == "null") return Value::null(type);
  if (type == ValType::ExternRef) return Value::externref(parse_u64(text));
  throw Error(fmt::format("funcref argument \"{}\" cannot be passed from a script", text));
}

// Commands with v128 values are skipped: the runner has no v128 values.
bool mentions_v128(const json& cmd) {
  auto is_v128 = [](const json& v) { return v.is_object() && v.value("type", "") == "v128"; };
  auto any_v128 = [&](const json& list) {
    return list.is_array() && std::any_of(list.begin(), list.end(), is_v128);
  };
  if (cmd.contains("expected") && any_v128(cmd["expected"])) return true;
  if (cmd.contains("either") && any_v128(cmd["either"])) return true;
  return cmd.contains("action") && cmd["action"].contains("args") &&
         any_v128(cmd["action"]["args"]);
}

// ---- Expected results -------------------------------------------------------

struct Expectation {
  enum class Kind : uint8_t { Exact, CanonicalNan, ArithmeticNan, NonNullRef };
  Kind kind = Kind::Exact;
  Value value; // the type always; the bits for Exact
};

Expectation parse_expectation(const json& expected) {
  ValType type = parse_type(string_field(expected, "type"));
  std::string text = optional_string_field(expected, "value");
  if (text == "nan:canonical") return {Expectation::Kind::CanonicalNan, {type, 0}};
  if (text == "nan:arithmetic") return {Expectation::Kind::ArithmeticNan, {type, 0}};
  if (!wasm::is_ref(type)) return {Expectation::Kind::Exact, {type, parse_number_bits(type, text)}};
  if (text == "null") return {Expectation::Kind::Exact, Value::null(type)};
  if (type == ValType::ExternRef && !text.empty())
    return {Expectation::Kind::Exact, Value::externref(parse_u64(text))};
  // `(ref.func)` / `(ref.extern)` without a value: any non-null reference.
  return {Expectation::Kind::NonNullRef, {type, 0}};
}

// A NaN with the quiet bit set, and for canonical NaNs nothing else in the
// payload; either sign.
bool is_nan_of_kind(ValType type, Slot bits, bool canonical) {
  const Slot sign = type == ValType::F32 ? 0x80000000u : 0x8000000000000000u;
  const Slot quiet_nan = type == ValType::F32 ? 0x7FC00000u : 0x7FF8000000000000u;
  Slot magnitude = bits & ~sign;
  return canonical ? magnitude == quiet_nan : (magnitude & quiet_nan) == quiet_nan;
}

bool matches(const Expectation& expected, const Value& actual) {
  if (actual.type != expected.value.type) return false;
  Slot bits = is_32_bit(actual.type) ? actual.bits & 0xFFFFFFFFu : actual.bits;
  switch (expected.kind) {
  case Expectation::Kind::Exact:
    return bits == expected.value.bits;
  case Expectation::Kind::CanonicalNan:
  case Expectation::Kind::ArithmeticNan:
    if (actual.type != ValType::F32 && actual.type != ValType::F64) return false;
    return is_nan_of_kind(actual.type, bits, expected.kind == Expectation::Kind::CanonicalNan);
  case Expectation::Kind::NonNullRef:
    return !actual.is_null();
  }
  return false;
}

// "i32:-1", "f64:1.5", "f32:nan:0x200000" (NaN payloads matter to the spec
// tests, so they are shown), "ref.null func", "ref.extern 42".
std::string describe_value(const Value& v) {
  auto type = wasm::to_string(v.type);
  if (wasm::is_ref(v.type)) return runtime::to_string(v);
  if (v.type == ValType::F32 && std::isnan(v.as_f32()))
    return fmt::format("{}:{}nan:0x{:x}", type, v.bits & 0x80000000u ? "-" : "",
                       v.bits & 0x7FFFFFu);
  if (v.type == ValType::F64 && std::isnan(v.as_f64()))
    return fmt::format("{}:{}nan:0x{:x}", type, v.bits >> 63 ? "-" : "",
                       v.bits & 0xFFFFFFFFFFFFFull);
  return fmt::format("{}:{}", type, runtime::to_string(v));
}

std::string describe(const Expectation& e) {
  auto type = wasm::to_string(e.value.type);
  switch (e.kind) {
  case Expectation::Kind::Exact:
    return describe_value(e.value);
  case Expectation::Kind::CanonicalNan:
    return fmt::format("{}:nan:canonical", type);
  case Expectation::Kind::ArithmeticNan:
    return fmt::format("{}:nan:arithmetic", type);
  case Expectation::Kind::NonNullRef:
    return fmt::format("{}:non-null", type);
  }
  return {};
}

// One value plain, any other number of values in parentheses.
std::string describe_list(const std::vector<std::string>& items) {
  if (items.size() == 1) return items[0];
  return fmt::format("({})", fmt::join(items, ", "));
}

std::string describe_values(const std::vector<Value>& values) {
  std::vector<std::string> items;
  for (const auto& v : values) items.push_back(describe_value(v));
  return describe_list(items);
}

// ---- Describing commands and outcomes for failure lines -------------------

std::string describe_arg(const json& arg) {
  try {
    return describe_value(parse_arg(arg));
  } catch (const std::exception&) {
    return arg.dump();
  }
}

std::string describe_action(const json& action) {
  std::string out = "(" + optional_string_field(action, "type");
  if (auto module = optional_string_field(action, "module"); !module.empty()) out += " " + module;
  out += fmt::format(" \"{}\"", optional_string_field(action, "field"));
  if (action.contains("args"))
    for (const auto& arg : action["args"]) out += " " + describe_arg(arg);
  return out + ")";
}

std::string describe_command(const json& cmd) {
  std::string out = optional_string_field(cmd, "type");
  if (cmd.contains("action")) return out + " " + describe_action(cmd["action"]);
  if (auto as = optional_string_field(cmd, "as"); !as.empty()) out += fmt::format(" \"{}\"", as);
  if (auto name = optional_string_field(cmd, "name"); !name.empty()) out += " " + name;
  if (auto file = optional_string_field(cmd, "filename"); !file.empty()) out += " " + file;
  return out;
}

// What the command expects, for "expected ..., got ...".
std::string describe_expectation(const json& cmd) {
  std::string type = optional_string_field(cmd, "type");
  std::string text = optional_string_field(cmd, "text");
  if (type == "module") return "instantiation";
  if (type == "register") return "a registered module";
  if (type == "action") return "a return";
  if (type == "assert_return" && cmd.contains("either")) {
    std::vector<std::string> items;
    for (const auto& e : cmd["either"]) items.push_back(describe(parse_expectation(e)));
    return fmt::format("one of {}", describe_list(items));
  }
  if (type == "assert_return") {
    std::vector<std::string> items;
    for (const auto& e : cmd.at("expected")) items.push_back(describe(parse_expectation(e)));
    return describe_list(items);
  }
  if (type == "thread") return "a thread started";
  if (type == "wait") return "a thread to wait for";
  if (type == "assert_trap" || type == "assert_exhaustion" || type == "assert_uninstantiable")
    return fmt::format("trap \"{}\"", text);
  if (type == "assert_invalid") return fmt::format("invalid module (\"{}\")", text);
  if (type == "assert_malformed") return fmt::format("malformed module (\"{}\")", text);
  if (type == "assert_unlinkable") return fmt::format("link error (\"{}\")", text);
  return "a supported command";
}

std::string describe_outcome(const ExecOutcome& outcome, const std::vector<Value>& values) {
  switch (outcome.kind) {
  case ExecOutcome::Kind::Returned:
    return describe_values(values);
  case ExecOutcome::Kind::Trapped:
    return fmt::format("trap \"{}\"", outcome.trap.message);
  case ExecOutcome::Kind::Exited:
    return fmt::format("exit with code {}", outcome.exit_code);
  case ExecOutcome::Kind::Suspended:
    return "a suspension";
  }
  return "an unknown outcome";
}

std::string describe_error(const std::exception& e) {
  if (auto* d = dynamic_cast<const DecodeError*>(&e))
    return fmt::format("malformed module (at 0x{:x}: {})", d->offset(), d->what());
  if (auto* v = dynamic_cast<const ValidationError*>(&e))
    return fmt::format("invalid module (at 0x{:x}: {})", v->offset(), v->what());
  if (dynamic_cast<const LinkError*>(&e)) return fmt::format("link error ({})", e.what());
  if (dynamic_cast<const runtime::InstantiationTrap*>(&e))
    return fmt::format("trap \"{}\" during instantiation", e.what());
  if (dynamic_cast<const Error*>(&e)) return fmt::format("error: {}", e.what());
  if (dynamic_cast<const InternalError*>(&e))
    return fmt::format("internal error (a bug in tern): {}", e.what());
  return fmt::format("unexpected exception: {}", e.what());
}

// ---- Running commands -------------------------------------------------------

struct Verdict {
  enum class Kind : uint8_t { Pass, Fail, Skip };
  Kind kind = Kind::Pass;
  std::string got; // for failures: what happened instead

  static Verdict pass() { return {}; }
  static Verdict skip() { return {Kind::Skip, {}}; }
  static Verdict fail(std::string got) { return {Kind::Fail, std::move(got)}; }
};

struct ActionResult {
  ExecOutcome outcome;
  std::vector<Value> values; // when it returned
};

class ScriptRunner {
public:
  ScriptRunner(const WastScript& script, const EngineOptions& engine)
      : script_(script), engine_(engine), store_(make_engine_for_mode(engine)), thread_(store_) {
    static std::atomic<uint64_t> next_thread_id{0};
    thread_.id = next_thread_id++;
    define_spectest(store_, linker_);
  }
  // Script threads still running are waited for: they use this runner's
  // instances.
  ~ScriptRunner() { join_all(); }
  ScriptRunner(const ScriptRunner&) = delete;
  ScriptRunner& operator=(const ScriptRunner&) = delete;

  // Runs wast2json's top-level object.
  WastTally run(const json& commands);

private:
  // A script thread: its own runner (store, engine, registrations) on a
  // host thread of its own.
  struct ScriptThread {
    std::unique_ptr<ScriptRunner> runner;
    json commands;
    WastTally tally;
    std::thread host;
  };

  WastTally run_list(const json& commands);
  void join_all();
  Verdict thread_command(const json& cmd);
  Verdict wait_command(const json& cmd);

  using Handler = Verdict (ScriptRunner::*)(const json&);
  Verdict run_guarded(const json& cmd);
  void report_failure(const json& cmd, const std::string& got) const;

  Verdict module_command(const json& cmd);
  Verdict register_command(const json& cmd);
  Verdict action_command(const json& cmd);
  Verdict assert_return(const json& cmd);
  Verdict assert_trap(const json& cmd);
  Verdict assert_invalid(const json& cmd);
  Verdict assert_malformed(const json& cmd);
  Verdict assert_unlinkable(const json& cmd);
  Verdict assert_uninstantiable(const json& cmd);

  std::shared_ptr<const wasm::Module> decode_and_validate(const json& cmd) const;
  runtime::ModuleInstance* instantiate(const json& cmd);
  runtime::ModuleInstance& instance_for(const json& cmd, const char* key) const;
  ActionResult perform(const json& action);
  ActionResult invoke(runtime::ModuleInstance& instance, const json& action);

  const WastScript& script_;
  EngineOptions engine_;
  WastTally tally_;
  std::map<std::string, std::unique_ptr<ScriptThread>> threads_;
  runtime::Store store_;
  runtime::Thread thread_;
  runtime::Linker linker_;
  runtime::ModuleInstance* current_ = nullptr;
  // Named modules; null when the module under that name failed to instantiate.
  std::map<std::string, runtime::ModuleInstance*> named_;
};

WastTally ScriptRunner::run(const json& commands) {
  if (!commands.is_object() || !commands.contains("commands") || !commands["commands"].is_array())
    throw Error("not a wast2json command list (no \"commands\" array)");
  return run_list(commands["commands"]);
}

// Runs the commands and waits for the threads they started; the tally
// includes theirs.
WastTally ScriptRunner::run_list(const json& commands) {
  for (const auto& cmd : commands) {
    Verdict verdict = run_guarded(cmd);
    switch (verdict.kind) {
    case Verdict::Kind::Pass:
      ++tally_.passed;
      break;
    case Verdict::Kind::Skip:
      ++tally_.skipped;
      break;
    case Verdict::Kind::Fail:
      ++tally_.failed;
      report_failure(cmd, verdict.got);
      break;
    }
  }
  join_all();
  return tally_;
}

void ScriptRunner::join_all() {
  for (auto& [name, t] : threads_) {
    if (t->host.joinable()) t->host.join();
    tally_ += t->tally;
  }
  threads_.clear();
}

// (thread $T (shared (module $M))* ...): the body runs against a fresh
// store that knows only the shared modules (cli/wast_threads.h).
Verdict ScriptRunner::thread_command(const json& cmd) {
  std::string name = string_field(cmd, "name");
  if (threads_.contains(name)) throw Error(fmt::format("thread {} is already running", name));
  auto t = std::make_unique<ScriptThread>();
  t->runner = std::make_unique<ScriptRunner>(script_, engine_);
  for (const auto& shared : cmd.value("shared", json::array())) {
    std::string module = shared.get<std::string>();
    auto it = named_.find(module);
    if (it == named_.end() || !it->second)
      throw Error(fmt::format("thread {} shares {}, which is not instantiated", name, module));
    t->runner->named_[module] = it->second;
  }
  t->commands = cmd.value("commands", json::array());
  ScriptThread* raw = t.get();
  t->host = std::thread([raw] {
    try {
      raw->tally = raw->runner->run_list(raw->commands);
    } catch (const std::exception& e) {
      fmt::print("{}: thread: {}\n", raw->runner->script_.name, e.what());
      ++raw->tally.failed;
    }
  });
  threads_[name] = std::move(t);
  return Verdict::pass();
}

Verdict ScriptRunner::wait_command(const json& cmd) {
  std::string name = string_field(cmd, "thread");
  auto it = threads_.find(name);
  if (it == threads_.end()) throw Error(fmt::format("no thread {} is running", name));
  it->second->host.join();
  tally_ += it->second->tally;
  threads_.erase(it);
  return Verdict::pass();
}

Verdict ScriptRunner::run_guarded(const json& cmd) {
  static const std::map<std::string, Handler> handlers = {
      {"module", &ScriptRunner::module_command},
      {"register", &ScriptRunner::register_command},
      {"action", &ScriptRunner::action_command},
      {"assert_return", &ScriptRunner::assert_return},
      {"assert_trap", &ScriptRunner::assert_trap},
      {"assert_exhaustion", &ScriptRunner::assert_trap},
      {"assert_invalid", &ScriptRunner::assert_invalid},
      {"assert_malformed", &ScriptRunner::assert_malformed},
      {"assert_unlinkable", &ScriptRunner::assert_unlinkable},
      {"assert_uninstantiable", &ScriptRunner::assert_uninstantiable},
      {"thread", &ScriptRunner::thread_command},
      {"wait", &ScriptRunner::wait_command},
  };
  try {
    auto it = handlers.find(optional_string_field(cmd, "type"));
    if (it == handlers.end()) return Verdict::fail("an unknown command");
    if (optional_string_field(cmd, "module_type") == "text") return Verdict::skip();
    if (mentions_v128(cmd)) return Verdict::skip();
    return (this->*(it->second))(cmd);
  } catch (const std::exception& e) {
    return Verdict::fail(describe_error(e));
  }
}

void ScriptRunner::report_failure(const json& cmd, const std::string& got) const {
  std::string expected;
  try {
    expected = describe_expectation(cmd);
  } catch (const std::exception&) {
    expected = "a well-formed command";
  }
  auto line = cmd.is_object() ? cmd.value("line", 0) : 0;
  fmt::print("{}:{}: {}: expected {}, got {}\n", script_.name, line, describe_command(cmd),
             expected, got);
}

std::shared_ptr<const wasm::Module> ScriptRunner::decode_and_validate(const json& cmd) const {
  auto bytes =
      util::read_file(fmt::format("{}/{}", script_.wasm_dir, string_field(cmd, "filename")));
  auto module = std::make_shared<wasm::Module>(wasm::decode_module(std::move(bytes)));
  wasm::validate_module(*module);
  return module;
}

runtime::ModuleInstance* ScriptRunner::instantiate(const json& cmd) {
  auto module = decode_and_validate(cmd);
  auto imports = linker_.resolve(*module);
  return store_.instantiate(std::move(module), imports, thread_);
}

// The instance named by `key` in `cmd` (an action's "module", a register's
// "name"), or the current one when there is none.
runtime::ModuleInstance& ScriptRunner::instance_for(const json& cmd, const char* key) const {
  std::string name = optional_string_field(cmd, key);
  if (name.empty()) {
    if (!current_) throw Error("no module is instantiated");
    return *current_;
  }
  auto it = named_.find(name);
  if (it == named_.end()) throw Error(fmt::format("no module named {}", name));
  if (!it->second) throw Error(fmt::format("module {} failed to instantiate", name));
  return *it->second;
}

Verdict ScriptRunner::module_command(const json& cmd) {
  // Until this module exists, nothing may run against an older one by mistake.
  current_ = nullptr;
  std::string name = optional_string_field(cmd, "name");
  if (!name.empty()) named_[name] = nullptr;
  current_ = instantiate(cmd);
  if (!name.empty()) named_[name] = current_;
  return Verdict::pass();
}

Verdict ScriptRunner::register_command(const json& cmd) {
  linker_.define_instance(string_field(cmd, "as"), instance_for(cmd, "name"));
  return Verdict::pass();
}

ActionResult ScriptRunner::perform(const json& action) {
  std::string type = string_field(action, "type");
  runtime::ModuleInstance& instance = instance_for(action, "module");
  if (type == "invoke") return invoke(instance, action);
  if (type != "get") throw Error(fmt::format("unknown action \"{}\"", type));
  std::string field = string_field(action, "field");
  auto ext = instance.find_export(field);
  if (!ext || ext->kind != wasm::ExternKind::Global)
    throw Error(fmt::format("no exported global \"{}\"", field));
  return {ExecOutcome::returned(), {ext->global->get()}};
}

ActionResult ScriptRunner::invoke(runtime::ModuleInstance& instance, const json& action) {
  std::string field = string_field(action, "field");
  runtime::FunctionInstance* func = instance.find_func_export(field);
  if (!func) throw Error(fmt::format("no exported function \"{}\"", field));
  const wasm::FuncType& type = *func->type;
  std::vector<Slot> args;
  for (const auto& arg : action.value("args", json::array())) {
    Value v = parse_arg(arg);
    size_t i = args.size();
    if (i >= type.params.size() || v.type != type.params[i])
      throw Error(
          fmt::format("arguments do not match \"{}\" of type {}", field, wasm::to_string(type)));
    args.push_back(v.bits);
  }
  if (args.size() != type.params.size())
    throw Error(
        fmt::format("too few arguments for \"{}\" of type {}", field, wasm::to_string(type)));
  std::vector<Slot> results(type.results.size());
  ActionResult result{store_.engine().call(thread_, func, args, results), {}};
  if (result.outcome.kind == ExecOutcome::Kind::Returned)
    for (size_t i = 0; i < results.size(); ++i)
      result.values.push_back({type.results[i], results[i]});
  return result;
}

Verdict ScriptRunner::action_command(const json& cmd) {
  ActionResult result = perform(cmd.at("action"));
  if (result.outcome.kind == ExecOutcome::Kind::Returned) return Verdict::pass();
  return Verdict::fail(describe_outcome(result.outcome, result.values));
}

// The results must match "expected", or with "either" (threads proposal:
// several outcomes are allowed) one of its values.
Verdict ScriptRunner::assert_return(const json& cmd) {
  std::vector<Expectation> expected;
  for (const auto& e : cmd.value("expected", json::array()))
    expected.push_back(parse_expectation(e));
  ActionResult result = perform(cmd.at("action"));
  std::string got = describe_outcome(result.outcome, result.values);
  if (result.outcome.kind != ExecOutcome::Kind::Returned) return Verdict::fail(got);
  if (cmd.contains("either")) {
    for (const auto& e : cmd["either"])
      if (result.values.size() == 1 && matches(parse_expectation(e), result.values[0]))
        return Verdict::pass();
    return Verdict::fail(got);
  }
  if (result.values.size() != expected.size()) return Verdict::fail(got);
  for (size_t i = 0; i < expected.size(); ++i)
    if (!matches(expected[i], result.values[i])) return Verdict::fail(got);
  return Verdict::pass();
}

// assert_trap and assert_exhaustion: the spec's message must appear in the
// trap's message (tern's come from runtime::trap_message).
Verdict ScriptRunner::assert_trap(const json& cmd) {
  if (!cmd.contains("action")) return assert_uninstantiable(cmd);
  ActionResult result = perform(cmd["action"]);
  bool trapped = result.outcome.kind == ExecOutcome::Kind::Trapped;
  if (trapped && result.outcome.trap.message.find(string_field(cmd, "text")) != std::string::npos)
    return Verdict::pass();
  return Verdict::fail(describe_outcome(result.outcome, result.values));
}

// Whether a DecodeError on an assert_invalid module is what the spec itself
// requires of that binary. wast2json encodes the text module as it is, and
// a few invalid text modules become binaries the spec calls malformed: e.g.
// `data.drop 0` in a module without data segments gets no data count
// section, which the binary format requires of any data.drop/memory.init.
bool malformed_by_spec(const DecodeError& e) {
  static const char* const kBinaryOnlyRules[] = {"data count section required"};
  std::string_view reason = e.what();
  return std::ranges::any_of(kBinaryOnlyRules, [&](std::string_view rule) {
    return reason.find(rule) != std::string_view::npos;
  });
}

// Validation must reject it. Any other DecodeError does not count: that is a
// different verdict ("malformed") from the one the spec asks for.
Verdict ScriptRunner::assert_invalid(const json& cmd) {
  try {
    decode_and_validate(cmd);
  } catch (const ValidationError&) {
    return Verdict::pass();
  } catch (const DecodeError& e) {
    if (malformed_by_spec(e)) return Verdict::pass();
    throw;
  }
  return Verdict::fail("a valid module");
}

// The decoder, or the validator while decoding function bodies, must reject
// the binary as malformed.
Verdict ScriptRunner::assert_malformed(const json& cmd) {
  try {
    decode_and_validate(cmd);
  } catch (const DecodeError&) {
    return Verdict::pass();
  }
  return Verdict::fail("a well-formed, valid module");
}

Verdict ScriptRunner::assert_unlinkable(const json& cmd) {
  try {
    instantiate(cmd);
  } catch (const LinkError&) {
    return Verdict::pass();
  }
  return Verdict::fail("an instance");
}

Verdict ScriptRunner::assert_uninstantiable(const json& cmd) {
  try {
    instantiate(cmd);
  } catch (const runtime::InstantiationTrap& e) {
    if (e.trap().message.find(string_field(cmd, "text")) != std::string::npos)
      return Verdict::pass();
    return Verdict::fail(fmt::format("trap \"{}\"", e.trap().message));
  }
  return Verdict::fail("an instance");
}

} // namespace

std::string format_tally(const WastTally& tally) {
  std::string out = fmt::format("{} passed, {} failed", tally.passed, tally.failed);
  if (tally.skipped > 0) out += fmt::format(", {} skipped", tally.skipped);
  return out;
}

WastTally run_wast_script(const WastScript& script, const json& commands,
                          const EngineOptions& engine) {
  ScriptRunner runner(script, engine);
  return runner.run(commands);
}

} // namespace tern::cli
