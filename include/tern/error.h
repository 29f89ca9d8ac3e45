// Errors tern reports as exceptions: bad input of every kind. Wasm traps are
// not errors; they are outcomes of execution (runtime/trap.h).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace tern {

class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The bytes are not a well-formed WebAssembly binary ("malformed" in the spec).
class DecodeError : public Error {
public:
  DecodeError(size_t offset, const std::string& reason)
      : Error(reason), offset_(offset) {}
  size_t offset() const { return offset_; }

private:
  size_t offset_;
};

// The module is well-formed but does not validate ("invalid" in the spec).
class ValidationError : public Error {
public:
  ValidationError(size_t offset, const std::string& reason)
      : Error(reason), offset_(offset) {}
  size_t offset() const { return offset_; }

private:
  size_t offset_;
};

// Imports do not match what the module needs ("unlinkable" in the spec).
class LinkError : public Error {
public:
  using Error::Error;
};

} // namespace tern
