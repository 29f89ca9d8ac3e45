// The `GWAY` snapshot section (docs/snapshot-format.md §10.2): the gateway
// a program is published through and a record per connection it relays —
// fd, the gateway's id for it, the byte counts both ways, and the bytes
// received that the program had not read. Like every section it is
// untrusted input: decoding checks every field, and a restore checks the
// records against the WASI section's fds.
#pragma once

#include "migrate/gateway_protocol.h"
#include "snapshot/model.h"

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tern::migrate::gateway {

inline constexpr snapshot::Tag kGatewayTag = snapshot::make_tag("GWAY");

struct ConnectionRecord {
  uint32_t fd = 0;
  uint64_t id = 0;
  bool outgoing = false;
  uint64_t received = 0;       // bytes of the peer's stream taken from the gateway
  uint64_t sent = 0;           // bytes the program sent
  std::vector<uint8_t> unread; // the last bytes received, not read by the program
};

struct GatewayRecords {
  std::string gateway;                       // the control address, as the run was given it
  Id128 program{};                           // the program's identity at the gateway
  Id128 instance{};                          // the gateway instance its connection ids belong to
  std::optional<uint32_t> listener_fd;       // the published listening socket
  std::vector<ConnectionRecord> connections; // in increasing fd order
};

snapshot::ExtensionSection encode_section(const GatewayRecords& records);
// Throws tern::Error naming the section and what is wrong.
GatewayRecords decode_section(const snapshot::ExtensionSection& section);

// For `tern inspect`.
nlohmann::json describe_json(const snapshot::ExtensionSection& section);
std::vector<std::string> describe_text(const snapshot::ExtensionSection& section);

} // namespace tern::migrate::gateway
