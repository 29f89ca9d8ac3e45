// Compiled parts kept while a module compiles (CompileOptions::parts_dir),
// so that a compile cut short continues where it stopped: `--mode auto`
// kills its compiler when the program ends first, and without this a
// program shorter than its compile would never get compiled code.
//
// One file per part, named by the sha-256 of the part's bitcode (which
// holds the part's code, target triple and data layout; the directory's
// name holds the module, tern version, compiler, CPU and options): the
// sha-256 of the object, then the object. A file that does not match is
// compiled again. The directory goes when the module's artifact is in
// the cache (aot/compiler.cpp).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tern::aot::llvmc {

class PartCache {
public:
  // "" keeps nothing.
  explicit PartCache(std::string dir);

  // The object compiled from `bitcode` before, if it is kept and intact.
  std::optional<std::vector<char>> find(std::span<const char> bitcode) const;
  // Keeps `object` for `bitcode`; best effort (an unwritable cache only
  // costs a compilation).
  void keep(std::span<const char> bitcode, const std::vector<char>& object) const;

private:
  std::string path_of(std::span<const char> bitcode) const;
  std::string dir_;
};

} // namespace tern::aot::llvmc
