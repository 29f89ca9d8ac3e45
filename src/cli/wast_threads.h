// The threads proposal's script commands, which wabt 1.0.32's wast2json
// cannot convert:
//
//   (thread $T (shared (module $M))* command*)   run the commands on a new
//       thread; it sees only the modules named in `shared` (and no
//       registrations of its parent)
//   (wait $T)                                   wait until $T has finished
//
// tern reads them itself: the script is split into its top-level forms,
// wast2json converts the script with those commands blanked out (line
// numbers stay), and each thread's body on its own, after placeholder
// modules that stand for the shared ones. The result is wast2json's command
// list with two more command types, in script order:
//
//   {"type": "thread", "line": L, "name": "$T", "shared": ["$M", ...],
//    "commands": [...the body's commands...]}
//   {"type": "wait", "line": L, "thread": "$T"}
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace tern::cli {

// Converts the script at `wast_path` into `out_dir` (module files next to
// the returned command list, which is also written as STEM.json). Scripts
// without thread commands are converted by wast2json alone. Throws
// tern::Error for an unreadable script, a thread command it cannot read, or
// a wast2json failure.
std::string convert_script(const std::string& wast_path, const std::string& out_dir);

} // namespace tern::cli
