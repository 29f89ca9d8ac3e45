// Whole-file reads and atomic whole-file writes.
#pragma once

#include "util/byte_stream.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace tern::util {

// Throws tern::Error naming the file and the OS reason.
std::vector<uint8_t> read_file(const std::string& path);

// Writes to a temporary file next to `path`, fsyncs it, renames it over
// `path` and fsyncs the directory: readers see the old or the new file, never
// a torn one.
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);

// The same for contents produced as a stream: `write` writes them to the
// sink (with bounded buffering). If it throws, the temporary file is removed,
// `path` is untouched and the exception propagates.
void write_file_atomic(const std::string& path, const std::function<void(ByteSink&)>& write);

// mkdir -p: creates path and its missing parents; an Error naming path if
// that fails.
void create_directories(const std::string& path);

// The temporary file write_file_atomic(path, ...) uses in this process.
std::string atomic_temp_path(const std::string& path);

} // namespace tern::util
