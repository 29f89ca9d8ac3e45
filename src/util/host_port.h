// "HOST:PORT" as options take it (--listen, --to): a name or numeric
// address, an IPv6 address in brackets, and a decimal port.
#pragma once

#include <string>
#include <string_view>

namespace tern::util {

struct HostPort {
  std::string host; // without brackets; empty for ":PORT"
  std::string port; // decimal, 0 to 65535
};

// Splits `spec`; throws tern::Error starting with "OPTION SPEC:" for a
// missing colon or a port that is not a number from 0 to 65535.
HostPort split_host_port(std::string_view spec, std::string_view option);

} // namespace tern::util
