// Reading a module from a file for the commands.
#pragma once

#include "wasm/module.h"

#include <memory>
#include <string>

namespace tern::cli {

// Reads, decodes and validates; errors name the file and the offset.
std::shared_ptr<wasm::Module> load_module(const std::string& path);

} // namespace tern::cli
