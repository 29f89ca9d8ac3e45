#include "migrate/gateway_records.h"

#include "snapshot/payload.h"
#include "tern/error.h"
#include "util/hex.h"
#include "wasi/fd_table.h"

#include <algorithm>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tern::migrate::gateway {
namespace {

using snapshot::PayloadReader;
using snapshot::PayloadWriter;

constexpr size_t kMaxAddressText = 1024;
constexpr uint32_t kNoListener = 0xFFFFFFFF;

} // namespace

snapshot::ExtensionSection encode_section(const GatewayRecords& g) {
  PayloadWriter w;
  w.string(g.gateway);
  w.bytes(g.program);
  w.bytes(g.instance);
  w.u32(g.listener_fd.value_or(kNoListener));
  w.u32(uint32_t(g.connections.size()));
  for (const ConnectionRecord& c : g.connections) {
    w.u32(c.fd);
    w.u64(c.id);
    w.boolean(c.outgoing);
    w.u64(c.received);
    w.u64(c.sent);
    w.u32(uint32_t(c.unread.size()));
    w.bytes(c.unread);
  }
  return {kGatewayTag, false, std::move(w.out())};
}

GatewayRecords decode_section(const snapshot::ExtensionSection& section) {
  PayloadReader r(section.payload, "section GWAY");
  GatewayRecords g;
  g.gateway = r.string();
  if (g.gateway.empty() || g.gateway.size() > kMaxAddressText)
    r.fail(fmt::format("a gateway address of {} bytes", g.gateway.size()));
  g.program = read_id(r);
  g.instance = read_id(r);
  const uint32_t listener = r.u32();
  if (listener != kNoListener) {
    if (listener >= wasi::FdTable::kMaxFds) r.fail(fmt::format("listener fd {}", listener));
    g.listener_fd = listener;
  }
  // The smallest record: fd, id, flag, two counts, an empty blob.
  g.connections.resize(r.count(4 + 8 + 1 + 8 + 8 + 4, "connections"));
  for (size_t i = 0; i < g.connections.size(); ++i) {
    ConnectionRecord& c = g.connections[i];
    c.fd = r.u32();
    if (c.fd >= wasi::FdTable::kMaxFds) r.fail(fmt::format("connection fd {}", c.fd));
    if (i > 0 && c.fd <= g.connections[i - 1].fd)
      r.fail(fmt::format("fd {} follows fd {}: fds must increase", c.fd, g.connections[i - 1].fd));
    if (g.listener_fd == c.fd) r.fail(fmt::format("fd {} is both listener and connection", c.fd));
    c.id = r.u64();
    c.outgoing = r.boolean();
    c.received = r.u64();
    c.sent = r.u64();
    auto unread = r.bytes(r.count(1, "unread bytes"));
    if (unread.size() > c.received)
      r.fail(fmt::format("fd {}: {} unread bytes of {} received", c.fd, unread.size(), c.received));
    c.unread.assign(unread.begin(), unread.end());
  }
  r.expect_end();
  return g;
}

nlohmann::json describe_json(const snapshot::ExtensionSection& section) {
  GatewayRecords g = decode_section(section);
  nlohmann::json connections = nlohmann::json::array();
  for (const ConnectionRecord& c : g.connections)
    connections.push_back({{"fd", c.fd},
                           {"id", c.id},
                           {"outgoing", c.outgoing},
                           {"received", c.received},
                           {"sent", c.sent},
                           {"unread", c.unread.size()}});
  nlohmann::json out = {{"gateway", g.gateway},
                        {"program", util::to_hex(g.program)},
                        {"instance", util::to_hex(g.instance)},
                        {"connections", std::move(connections)}};
  if (g.listener_fd) out["listener_fd"] = *g.listener_fd;
  return out;
}

std::vector<std::string> describe_text(const snapshot::ExtensionSection& section) {
  GatewayRecords g = decode_section(section);
  std::vector<std::string> lines;
  lines.push_back(fmt::format("gateway {}, program {}, gateway instance {}", g.gateway,
                              util::to_hex(g.program), util::to_hex(g.instance)));
  if (g.listener_fd) lines.push_back(fmt::format("published listener: fd {}", *g.listener_fd));
  for (const ConnectionRecord& c : g.connections)
    lines.push_back(fmt::format("fd {}: connection {} ({}), {} bytes received ({} unread), {} sent",
                                c.fd, c.id, c.outgoing ? "outgoing" : "accepted", c.received,
                                c.unread.size(), c.sent));
  return lines;
}

} // namespace tern::migrate::gateway
