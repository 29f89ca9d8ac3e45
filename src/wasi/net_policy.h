// What network access a guest has beyond the sockets tern hands it
// (--listen): the addresses it may connect and send to (--allow-connect),
// the addresses it may bind (--allow-bind), and the host names it may
// resolve (--allow-resolve). Nothing is allowed by default. This is WAMR's
// --addr-pool / --allow-resolve in spirit, split by direction.
#pragma once

#include "wasi/fd_table.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tern::wasi {

// "ADDR[/PREFIX][:PORT]": an IPv4 address, or an IPv6 one in brackets when
// a port follows ("[::1]:8080"); PREFIX bits of it must match (default: all
// of them), and PORT, when given, must be the port.
struct AddressPattern {
  uint8_t family = 0;
  std::array<uint8_t, 16> ip{};
  unsigned prefix = 0;
  std::optional<uint16_t> port;

  // Throws tern::Error naming `option` when `spec` is not of that form.
  static AddressPattern parse(std::string_view spec, std::string_view option);
  // IPv4-mapped IPv6 addresses match as the IPv4 address they map.
  bool matches(const SocketAddress& addr) const;
};

class NetPolicy {
public:
  NetPolicy() = default;
  // The option values as given; throws tern::Error for a malformed one.
  NetPolicy(const std::vector<std::string>& allow_connect,
            const std::vector<std::string>& allow_bind,
            const std::vector<std::string>& allow_resolve);

  bool may_connect(const SocketAddress& addr) const { return any_matches(connect_, addr); }
  bool may_bind(const SocketAddress& addr) const { return any_matches(bind_, addr); }
  // `host` is a name (numeric addresses need no permission): allowed when
  // an --allow-resolve names it, is "*", or is "*.SUFFIX" and it ends in
  // ".SUFFIX". Case does not matter.
  bool may_resolve(std::string_view host) const;

private:
  static bool any_matches(const std::vector<AddressPattern>& patterns, const SocketAddress& addr);

  std::vector<AddressPattern> connect_;
  std::vector<AddressPattern> bind_;
  std::vector<std::string> resolve_; // lower case
};

} // namespace tern::wasi
