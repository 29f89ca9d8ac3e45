// Whole-file reads and atomic whole-file writes.
#pragma once

#include <cstdint>
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

} // namespace tern::util
