// Bugs in tern itself, as opposed to bad input (tern/error.h).
#pragma once

#include <stdexcept>

namespace tern {

// Something that cannot happen did: a broken invariant of tern's own, a bug,
// never the user's bad input. It is deliberately not a tern::Error, so code
// that handles bad input (and e.g. falls back to something else) lets it
// through, and the command line reports it as a bug with its own exit
// status (cli/commands.h, kInternalErrorExitCode).
class InternalError : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

} // namespace tern
