// register_wasi makes only the functions a module imports: each import
// resolves to a function of the right type, a name imported twice is one
// function, and a name WASI does not have is still an unknown import.
#include "interp/engine.h"
#include "runtime/store.h"
#include "tern/error.h"
#include "wasi/wasi.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <gtest/gtest.h>

namespace tern::test {
namespace {

wasm::Module load(const std::string& wat) {
  wasm::Module m = wasm::decode_module(wat_to_wasm(wat));
  wasm::validate_module(m);
  return m;
}

struct Linked {
  wasi::WasiContext ctx{wasi::WasiOptions{}};
  runtime::Store store{interp::make_engine()};
  runtime::Linker linker;
};

TEST(WasiRegister, OnlyTheImportedFunctionsAreMadeAndResolve) {
  const wasm::Module m = load(R"((module
    (import "wasi_snapshot_preview1" "fd_write"
      (func (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $again (param i32 i32 i32 i32) (result i32)))))");
  Linked l;
  wasi::register_wasi(l.ctx, l.store, l.linker, m);
  const std::vector<runtime::Extern> externs = l.linker.resolve(m);
  ASSERT_EQ(externs.size(), 3u);
  ASSERT_TRUE(externs[0].func && externs[0].func->is_host());
  EXPECT_EQ(externs[0].func->host->name, "fd_write");
  EXPECT_EQ(externs[0].func->type->results, std::vector<wasm::ValType>{wasm::ValType::I32});
  EXPECT_EQ(externs[1].func->host->name, "proc_exit");
  EXPECT_EQ(externs[1].func->type->params, std::vector<wasm::ValType>{wasm::ValType::I32});
  EXPECT_EQ(externs[2].func, externs[0].func); // one fd_write
  // The others were not made: resolving a module that needs one fails.
  const wasm::Module other = load(R"((module
    (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))))");
  EXPECT_THROW(l.linker.resolve(other), LinkError);
}

TEST(WasiRegister, AnUnknownWasiNameIsAnUnknownImport) {
  const wasm::Module m = load(R"((module
    (import "wasi_snapshot_preview1" "no_such_call" (func (param i32)))))");
  Linked l;
  wasi::register_wasi(l.ctx, l.store, l.linker, m);
  try {
    l.linker.resolve(m);
    FAIL() << "resolved an import WASI does not have";
  } catch (const LinkError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown import: wasi_snapshot_preview1.no_such_call"),
              std::string::npos)
        << e.what();
  }
}

} // namespace
} // namespace tern::test
