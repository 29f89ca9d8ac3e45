#include "wasi/net_policy.h"

#include "tern/error.h"
#include "wasi/socket.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>
#include <fmt/format.h>

namespace tern::wasi {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& ch : out) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// A decimal number no larger than `max`, or nullopt.
std::optional<unsigned> number(std::string_view text, unsigned max) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > max)
    return std::nullopt;
  return value;
}

// Splits "ADDR[/PREFIX][:PORT]" into the address and what follows it;
// false for an unclosed '['.
bool split_address(std::string_view spec, std::string_view& addr, std::string_view& rest) {
  if (!spec.empty() && spec.front() == '[') {
    size_t close = spec.find(']');
    if (close == std::string_view::npos) return false;
    addr = spec.substr(1, close - 1);
    rest = spec.substr(close + 1);
    return true;
  }
  bool bare_ipv6 = std::count(spec.begin(), spec.end(), ':') > 1; // no port possible
  size_t end = spec.find_first_of(bare_ipv6 ? "/" : "/:");
  addr = spec.substr(0, end);
  rest = end == std::string_view::npos ? std::string_view() : spec.substr(end);
  return true;
}

} // namespace

AddressPattern AddressPattern::parse(std::string_view spec, std::string_view option) {
  auto fail = [&] {
    return Error(fmt::format("{} {}: expected ADDR[/PREFIX][:PORT] with a numeric IPv4 "
                             "address or a bracketed IPv6 one ([::1]:8080)",
                             option, spec));
  };
  std::string_view addr, rest;
  if (!split_address(spec, addr, rest)) throw fail();
  AddressPattern p;
  std::string text(addr);
  if (::inet_pton(AF_INET, text.c_str(), p.ip.data()) == 1) {
    p.family = 4;
  } else if (::inet_pton(AF_INET6, text.c_str(), p.ip.data()) == 1) {
    p.family = 6;
  } else {
    throw fail();
  }
  unsigned max_prefix = p.family == 4 ? 32 : 128;
  p.prefix = max_prefix;
  if (!rest.empty() && rest.front() == '/') {
    size_t colon = rest.find(':');
    auto prefix =
        number(rest.substr(1, colon == std::string_view::npos ? colon : colon - 1), max_prefix);
    if (!prefix) throw fail();
    p.prefix = *prefix;
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
  }
  if (!rest.empty()) {
    auto port = rest.front() == ':' ? number(rest.substr(1), 65535) : std::nullopt;
    if (!port) throw fail();
    p.port = uint16_t(*port);
  }
  return p;
}

bool AddressPattern::matches(const SocketAddress& addr) const {
  SocketAddress a = unmapped(addr);
  if (a.family != family) return false;
  if (port && a.port != *port) return false;
  unsigned whole = prefix / 8, bits = prefix % 8;
  if (!std::equal(ip.begin(), ip.begin() + whole, a.ip.begin())) return false;
  if (bits == 0) return true;
  uint8_t mask = uint8_t(0xff << (8 - bits));
  return (ip[whole] & mask) == (a.ip[whole] & mask);
}

NetPolicy::NetPolicy(const std::vector<std::string>& allow_connect,
                     const std::vector<std::string>& allow_bind,
                     const std::vector<std::string>& allow_resolve) {
  for (const auto& spec : allow_connect)
    connect_.push_back(AddressPattern::parse(spec, "--allow-connect"));
  for (const auto& spec : allow_bind) bind_.push_back(AddressPattern::parse(spec, "--allow-bind"));
  for (const auto& name : allow_resolve) {
    if (name.empty()) throw Error("--allow-resolve: empty host name");
    resolve_.push_back(lower(name));
  }
}

bool NetPolicy::any_matches(const std::vector<AddressPattern>& patterns,
                            const SocketAddress& addr) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const AddressPattern& p) { return p.matches(addr); });
}

bool NetPolicy::may_resolve(std::string_view host) const {
  std::string name = lower(host);
  return std::any_of(resolve_.begin(), resolve_.end(), [&](const std::string& allowed) {
    if (allowed == "*" || allowed == name) return true;
    if (allowed.size() < 2 || allowed.compare(0, 2, "*.") != 0) return false;
    std::string_view suffix = std::string_view(allowed).substr(1); // ".example.com"
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  });
}

} // namespace tern::wasi
