// `tern gateway`: a user-space TCP proxy in front of a program that moves
// (docs/gateway.md). Clients connect to the gateway; it connects each one
// to the program that registered through its control address, counts the
// bytes both ways, and while the program is away (stopped for a
// checkpoint, being restored elsewhere) holds every connection open,
// buffering what clients send up to a bound, so that the restored program
// re-joins each connection at exactly the byte where it left. Programs may
// also open outgoing connections through it, which survive moves the same
// way.
//
// One thread runs an epoll loop for every client and data connection;
// each backend's control channel (migrate/channel.h, authenticated with
// the shared key) has a thread of its own that only moves its messages.
#pragma once

#include "migrate/channel.h"
#include "wasi/fd_table.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace tern::migrate {

struct GatewayOptions {
  std::string listen;  // "ADDR:PORT" where clients connect
  std::string control; // "ADDR:PORT" where backends register and connect
  Key key;
  // How long connections are held for a program that has gone away.
  std::chrono::milliseconds hold{60'000};
  // Bytes buffered per connection and direction before the gateway stops
  // reading (TCP back-pressure).
  size_t buffer = size_t(1) << 20;
  // Where programs may connect out through the gateway (NetPolicy
  // patterns, as --allow-connect); empty: anywhere.
  std::vector<std::string> allow_connect;
  bool verbose = false; // one line on stderr per event worth knowing
};

class Gateway {
public:
  // Binds both addresses; throws tern::Error naming the option that fails.
  explicit Gateway(GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // The addresses bound ("ADDR:PORT", with the real port when 0 was asked).
  std::string listen_address() const;
  std::string control_address() const;

  // Serves until stop(); every connection is closed on return.
  void run();
  // From any thread or a signal handler.
  void stop();

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace tern::migrate
