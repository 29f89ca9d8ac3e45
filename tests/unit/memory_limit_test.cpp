// tern's limit on linear memory, one page below wasm's 4 GiB
// (wasm::kMaxRuntimePages): compiled code relies on it (aot/abi.h), so no
// memory may reach 65536 pages, by instantiation or by growing.
#include "runtime/memory.h"
#include "tern/error.h"

#include <gtest/gtest.h>

namespace tern {
namespace {

wasm::MemoryType pages(uint64_t min, std::optional<uint64_t> max = std::nullopt) {
  wasm::MemoryType t;
  t.limits.min = min;
  t.limits.max = max;
  return t;
}

TEST(MemoryLimit, A4GiBMemoryIsRefusedWithAClearError) {
  try {
    runtime::Memory memory(pages(wasm::kMaxPages));
    FAIL() << "a memory of 65536 pages was created";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "a memory of 65536 pages is above tern's limit of 65535 pages (4 GiB - 64 KiB)");
  }
}

TEST(MemoryLimit, GrowStopsOnePageShortOf4GiB) {
  runtime::Memory memory(pages(1));
  EXPECT_EQ(memory.grow(wasm::kMaxRuntimePages), -1);
  EXPECT_EQ(memory.pages(), 1u);
  runtime::Memory declared_max(pages(1, wasm::kMaxPages));
  EXPECT_EQ(declared_max.grow(wasm::kMaxPages - 1), -1);
  EXPECT_EQ(declared_max.grow(1), 1);
  EXPECT_EQ(declared_max.pages(), 2u);
}

} // namespace
} // namespace tern
