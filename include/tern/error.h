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
  DecodeError(size_t offset, const std::string& reason) : Error(reason), offset_(offset) {}
  size_t offset() const { return offset_; }

private:
  size_t offset_;
};

// The module uses a WebAssembly proposal tern does not implement yet (SIMD,
// exception handling, ...; wasm/proposals.h). A DecodeError whose message
// starts with what WebAssembly 2.0 calls the bytes ("illegal opcode"), as
// the spec tests expect, and goes on to name the proposal; proposal() and
// construct() tell it without the former.
class UnsupportedProposal : public DecodeError {
public:
  // `proposal`: "SIMD", "exception handling"; `construct`: what in the
  // binary uses it ("instruction prefix 0xfd").
  UnsupportedProposal(size_t offset, const std::string& malformed, const std::string& proposal,
                      const std::string& construct)
      : DecodeError(offset, malformed + " (" + construct + ": the " + proposal +
                                " proposal is not supported yet)"),
        proposal_(proposal), construct_(construct) {}
  const std::string& proposal() const { return proposal_; }
  const std::string& construct() const { return construct_; }

private:
  std::string proposal_;
  std::string construct_;
};

// The module is well-formed but does not validate ("invalid" in the spec).
class ValidationError : public Error {
public:
  ValidationError(size_t offset, const std::string& reason) : Error(reason), offset_(offset) {}
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
