// tern's side of `tern gateway` (docs/gateway.md): a program run with
// `--gateway CONTROL_ADDR:PORT --key FILE` registers with the gateway, which
// then brings it its clients through its first --listen socket and carries
// its outgoing connections. At each checkpoint this link brings the
// connections to agreement with the gateway (every byte the program sent
// has arrived there, every byte the gateway sent is drained from the
// kernel) and writes their records (`GWAY`); a restore registers again and
// re-joins each connection at the recorded offsets.
#pragma once

#include "migrate/channel.h"
#include "migrate/gateway_protocol.h"
#include "migrate/gateway_records.h"
#include "program/program.h"
#include "wasi/gateway.h"

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace tern::migrate {

struct BackendOptions {
  // The gateway's control address; for a restore "" means the snapshot's.
  std::string gateway;
  std::optional<Key> key;
  // A restore that leaves the gateway out: its connections come back
  // reset, and it takes clients on its own.
  bool no_gateway = false;
  // How long the gateway may take to answer (registration, a checkpoint).
  std::chrono::milliseconds timeout{10'000};
  // A migration's target: join the connections as a standby once the
  // program is rebuilt (before the source commits; the source keeps them
  // until then), take them over once the source has committed, and run it
  // without the gateway rather than not at all if that fails. Otherwise
  // a restore registers at once, and a failure ends it.
  bool join_when_resuming = false;
};

class GatewayBackend final : public wasi::GatewayLink,
                             public program::Participant,
                             public std::enable_shared_from_this<GatewayBackend> {
public:
  explicit GatewayBackend(BackendOptions options);
  ~GatewayBackend() override;

  // program::Participant
  snapshot::Tag tag() const override { return gateway::kGatewayTag; }
  void started(wasi::WasiContext& ctx) override;
  void restoring(const snapshot::ExtensionSection* section, wasi::RestoreOptions& wasi) override;
  void restored(wasi::WasiContext& ctx) override;
  void committed(wasi::WasiContext& ctx) override;
  void resuming(wasi::WasiContext& ctx) override;
  std::optional<snapshot::ExtensionSection> checkpoint(wasi::WasiContext& ctx) override;
  void resumed() override;
  void ended() override;

  // wasi::GatewayLink
  Offer take_offer(int fd, const runtime::Interrupt& interrupt, wasi::GatewayStream& out,
                   wasi::SocketAddress& peer) override;
  bool routes(const wasi::SocketAddress& target) const override;
  wasi::Errno open_outgoing(util::UniqueFd& out) override;
  Step step_outgoing(int fd, const wasi::SocketAddress& target, wasi::GatewayStream& g,
                     short& events, wasi::Errno& error) override;
  void closing(const wasi::GatewayStream& g, bool write_only) override;

private:
  void register_program(wasi::WasiContext& ctx, const std::vector<gateway::HeldConnection>& held,
                        bool standby, gateway::RegisteredMsg& reply);
  gateway::Message request(gateway::MsgType type, std::span<const uint8_t> payload,
                           gateway::MsgType expected);
  void send(gateway::MsgType type, std::span<const uint8_t> payload = {});
  bool joins() const;
  std::vector<gateway::HeldConnection> held() const;
  void join(wasi::WasiContext& ctx);
  void join_as_standby(wasi::WasiContext& ctx);
  void join_for_good(wasi::WasiContext& ctx);
  void publish(wasi::WasiContext& ctx);
  void rejoin(wasi::WasiContext& ctx, const gateway::RegisteredMsg& registered);
  void reset_unjoined(wasi::WasiContext& ctx);
  void lost(const std::string& why);

  BackendOptions opt_;
  std::string gateway_;                 // the control address in use
  wasi::SocketAddress gateway_address_; // resolved
  std::unique_ptr<Channel> channel_;    // null: no gateway (or lost)
  gateway::Id128 program_{}, instance_{};
  uint64_t session_ = 0;
  gateway::SessionKey key_{};
  uint64_t sequence_ = 0;                        // of outgoing connect requests
  std::set<uint64_t> taken_;                     // offers taken in this session
  std::optional<uint32_t> listener_fd_;          // the published listener
  std::optional<gateway::GatewayRecords> saved_; // a restore's records
  bool frozen_ = false;
  bool standby_ = false; // joined as a standby: READY takes the program over
  bool joined_ = false;  // a migration's target: joined for good (or gave up)
};

} // namespace tern::migrate
