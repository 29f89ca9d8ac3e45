#include "cli/load.h"

#include "tern/error.h"
#include "util/file.h"
#include "util/trace_time.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"

#include <fmt/format.h>

namespace tern::cli {

std::shared_ptr<wasm::Module> load_module(const std::string& path) {
  auto bytes = util::read_file(path);
  try {
    auto module = std::make_shared<wasm::Module>(wasm::decode_module(std::move(bytes)));
    wasm::validate_module(*module);
    util::trace_time("module decoded and validated");
    return module;
  } catch (const UnsupportedProposal& e) {
    throw Error(fmt::format("{}: the {} proposal is not supported yet ({} at offset 0x{:x})", path,
                            e.proposal(), e.construct(), e.offset()));
  } catch (const DecodeError& e) {
    throw Error(
        fmt::format("{}: malformed module at offset 0x{:x}: {}", path, e.offset(), e.what()));
  } catch (const ValidationError& e) {
    throw Error(fmt::format("{}: invalid module at offset 0x{:x}: {}", path, e.offset(), e.what()));
  }
}

} // namespace tern::cli
