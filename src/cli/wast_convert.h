// Spec scripts (.wast) → wast2json's command list (.json) plus the module
// binaries it refers to. tern has no text parser, so the runner relies on
// Debian wabt's wast2json, run as a subprocess.
#pragma once

#include <string>

namespace tern::cli {

// A private directory under $TMPDIR (or /tmp), removed with its contents
// when this object goes away.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

private:
  std::string path_;
};

// Converts `wast_path` into `out_dir`; returns the path of the JSON file.
// Throws tern::Error when the script cannot be read, wast2json is missing,
// or it fails (its diagnostics are in the message).
std::string convert_wast(const std::string& wast_path, const std::string& out_dir);

} // namespace tern::cli
