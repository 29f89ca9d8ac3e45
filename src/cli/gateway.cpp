// `tern gateway --listen ADDR:PORT --control ADDR:PORT --key FILE`: the TCP
// proxy that keeps a moving program's connections alive
// (migrate/gateway.h, docs/gateway.md). It runs until SIGINT or SIGTERM;
// its connections end with it.
#include "migrate/gateway.h"

#include "cli/checkpoint_options.h"
#include "cli/commands.h"
#include "tern/error.h"

#include <CLI/CLI.hpp>
#include <atomic>
#include <charconv>
#include <csignal>
#include <fmt/format.h>

namespace tern::cli {
namespace {

struct GatewayCliOptions {
  std::string listen, control, key;
  std::string hold = "60s";
  std::string buffer = "1M";
  std::vector<std::string> allow_connect;
  bool verbose = false;
};

std::atomic<migrate::Gateway*> g_gateway{nullptr};

extern "C" void on_stop_signal(int) {
  if (auto* g = g_gateway.load()) g->stop();
}

// "65536", "64K", "1M", "1G" (binary units).
size_t parse_size(const std::string& text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string unit(end, text.data() + text.size());
  uint64_t scale = unit.empty()  ? 1
                   : unit == "K" ? 1 << 10
                   : unit == "M" ? 1 << 20
                   : unit == "G" ? 1 << 30
                                 : 0;
  if (ec != std::errc() || scale == 0 || value == 0 || value > (uint64_t(1) << 40) / scale)
    throw Error(fmt::format("--buffer {}: expected a size such as 65536, 64K or 1M", text));
  return size_t(value * scale);
}

int serve(const GatewayCliOptions& o) {
  migrate::GatewayOptions options;
  options.listen = o.listen;
  options.control = o.control;
  options.hold = parse_duration(o.hold, "--hold");
  options.buffer = parse_size(o.buffer);
  options.key = migrate::Key::load(o.key);
  options.allow_connect = o.allow_connect;
  options.verbose = o.verbose;
  migrate::Gateway gateway(std::move(options));
  // Scripts start clients and backends once this line is out.
  fmt::print("tern gateway: clients on {}, control on {}\n", gateway.listen_address(),
             gateway.control_address());
  std::fflush(stdout);
  g_gateway.store(&gateway);
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  gateway.run();
  g_gateway.store(nullptr);
  return 0;
}

void add_gateway_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "gateway", "Hold clients' TCP connections to a program while it moves (docs/gateway.md)");
  auto o = std::make_shared<GatewayCliOptions>();
  cmd->add_option("--listen", o->listen, "Where clients connect")
      ->required()
      ->type_name("ADDR:PORT");
  cmd->add_option("--control", o->control,
                  "Where programs (tern run/restore --gateway) register and connect")
      ->required()
      ->type_name("ADDR:PORT");
  cmd->add_option("--key", o->key, "The key the programs hold too (tern keygen)")
      ->required()
      ->type_name("FILE");
  cmd->add_option("--hold", o->hold,
                  "How long connections are held for a program that went away (default 60s)")
      ->type_name("DURATION");
  cmd->add_option("--buffer", o->buffer,
                  "Bytes buffered per connection and direction before reading stops (default 1M)")
      ->type_name("SIZE");
  cmd->add_option("--allow-connect", o->allow_connect,
                  "Where programs may connect out through the gateway (default: anywhere)")
      ->type_name("ADDR[/PREFIX][:PORT]")
      ->allow_extra_args(false);
  cmd->add_flag("--verbose", o->verbose, "Report connections, registrations and moves on stderr");
  cmd->callback([o] { guarded([&] { return serve(*o); }); });
}

} // namespace

TERN_COMMAND("gateway", add_gateway_command);

} // namespace tern::cli
