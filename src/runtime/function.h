// Function instances: wasm functions of a module instance, or host functions
// (WASI, the spectest module, embedder callbacks), called with one ABI.
#pragma once

#include "runtime/value.h"
#include "wasm/types.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace tern::runtime {

class ModuleInstance;
class Memory;
class Thread;

// How a host function finished.
enum class HostStatus : uint8_t {
  Ok,      // results are written
  Trap,    // wasm trap with HostResult::message
  Exit,    // the program exits with HostResult::exit_code (proc_exit)
  Suspend, // a checkpoint was requested while the call blocked: stop at
           // this host call site; the call is issued again after restore
};

struct HostResult {
  HostStatus status = HostStatus::Ok;
  int32_t exit_code = 0;
  std::string message;

  static HostResult ok() { return {}; }
  static HostResult trap(std::string msg) { return {HostStatus::Trap, 0, std::move(msg)}; }
  static HostResult exit(int32_t code) { return {HostStatus::Exit, code, {}}; }
  static HostResult suspend() { return {HostStatus::Suspend, 0, {}}; }
};

// What a host function can see of its caller.
struct CallContext {
  Thread& thread;
  ModuleInstance* caller; // the calling instance (nullptr when called from the host)
  Memory* memory() const; // the caller's memory 0, or nullptr
};

using HostCallback = std::function<HostResult(CallContext& ctx, std::span<const Slot> args,
                                              std::span<Slot> results)>;

struct HostFunction {
  wasm::FuncType type;
  HostCallback callback;
  std::string module_name; // for messages and backtraces ("wasi_snapshot_preview1")
  std::string name;
};

struct FunctionInstance {
  const wasm::FuncType* type = nullptr;
  uint32_t type_id = 0;               // canonical id in the Store (call_indirect)
  ModuleInstance* instance = nullptr; // owner; nullptr for host functions
  uint32_t index = 0;                 // index in the owner's function space
  const HostFunction* host = nullptr; // set for host functions
  const void* code = nullptr;         // engine code (interp::CompiledFunction)

  bool is_host() const { return host != nullptr; }
};

} // namespace tern::runtime
