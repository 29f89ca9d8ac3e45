// A snapshot described for people (`tern inspect`): one JSON document that
// the --json output prints as it is and the text output lays out. Extension
// sections (WASI fd table, sockets, ...) are described by renderers their
// owners register; without one a section shows its tag and size.
#pragma once

#include "snapshot/model.h"
#include "wasm/module.h"

#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <vector>

namespace tern::snapshot {

// Both take the whole section; wasi/state.h's describe_state_json and
// describe_state fit them as they are.
struct ExtensionRenderer {
  // The section's contents as JSON (shown under "content"); throws
  // tern::Error for a payload it cannot decode.
  std::function<nlohmann::json(const ExtensionSection& section)> to_json;
  // Lines for the text output (indented by the caller); unset: the JSON.
  std::function<std::vector<std::string>(const ExtensionSection& section)> to_text;
};

// Owners register once, before inspecting (cli/inspect.cpp lists them).
void register_extension_renderer(const Tag& tag, ExtensionRenderer renderer);
const ExtensionRenderer* find_extension_renderer(const Tag& tag);

// `module` (the snapshot's own, decoded) supplies function and local names;
// without it functions are "func[N]". `module_source` says where it came
// from ("snapshot", a file name, or empty).
nlohmann::json describe_snapshot(const Snapshot& snapshot, const wasm::Module* module,
                                 const std::string& module_source);

// A value as people read it: "42", "-1.5", "ref.func 3", "ref.null func".
std::string value_text(const runtime::ViewValue& v);
std::string frame_kind_name(runtime::FrameKind kind);

} // namespace tern::snapshot
