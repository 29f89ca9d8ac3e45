// wasi_snapshot_preview1 for a store: every function of the module as a
// host function bound to one WasiContext.
#pragma once

#include "runtime/function.h"
#include "runtime/store.h"
#include "wasi/context.h"

#include <vector>

namespace tern::wasi {

inline constexpr const char* kModuleName = "wasi_snapshot_preview1";

// The host functions of wasi_snapshot_preview1, bound to `ctx` (which must
// outlive them).
std::vector<runtime::HostFunction> host_functions(WasiContext& ctx);

// Adds those that `module` imports to `store` and defines them in `linker`
// under kModuleName (imports of unknown names are left to resolve() to
// report).
void register_wasi(WasiContext& ctx, runtime::Store& store, runtime::Linker& linker,
                   const wasm::Module& module);

} // namespace tern::wasi
