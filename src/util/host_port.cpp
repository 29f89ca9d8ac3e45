#include "util/host_port.h"

#include "tern/error.h"

#include <charconv>
#include <fmt/format.h>

namespace tern::util {

HostPort split_host_port(std::string_view spec, std::string_view option) {
  size_t colon = spec.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == spec.size())
    throw Error(fmt::format("{} {}: expected ADDR:PORT", option, spec));
  std::string_view host = spec.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  // getaddrinfo takes "99999" and keeps its low 16 bits (port 34463).
  std::string_view port = spec.substr(colon + 1);
  unsigned number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number > 65535)
    throw Error(fmt::format("{} {}: the port must be a number from 0 to 65535", option, spec));
  return {std::string(host), std::string(port)};
}

} // namespace tern::util
