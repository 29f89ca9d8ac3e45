#include "migrate/source.h"

#include "migrate/channel.h"
#include "migrate/stream.h"
#include "runtime/dirty_pages.h"
#include "runtime/instance.h"
#include "runtime/memory.h"
#include "snapshot/capture.h"
#include "snapshot/format.h"
#include "snapshot/pages.h"
#include "tern/error.h"
#include "util/trace_time.h"
#include "wasi/state.h"

#include <atomic>
#include <charconv>
#include <fmt/format.h>

namespace tern::migrate {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

uint64_t parse_number(const std::string& option, const std::string& text) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw Error(fmt::format("{} {}: expected a number", option, text));
  return n;
}

// The program's memories as the source reads them while it runs: the base
// of a memory with a guard reservation never moves, and its size only
// grows (size() reads it atomically: the program's thread may be growing it).
struct LiveMemory {
  const runtime::Memory* memory;
  std::span<const uint8_t> bytes() const { return {memory->base(), memory->size()}; }
};

// One direction of pages: MEMD + MEMP sections of one memory.
class PageSender {
public:
  // Pages are sent while the program runs and writes them.
  PageSender(MessageWriter& out, bool compress) : out_(out) {
    chunks_.compress = compress;
    chunks_.input_may_change = true;
  }

  // Sends the flagged pages of memory `index` (whose size is
  // bytes.size()); returns how many.
  uint64_t send(uint32_t index, const runtime::Memory& m, std::span<const uint8_t> bytes,
                const std::vector<bool>& pages) {
    snapshot::MemoryImage header;
    header.pages = bytes.size() / snapshot::kPageSize;
    header.max_pages = m.max_pages();
    header.shared = m.shared();
    header.contents.data = bytes;
    out_.send(snapshot::kMemoryTag, snapshot::encode_memory_header(index, header));
    snapshot::encode_page_chunks(
        index, bytes, pages, chunks_,
        [&](std::span<const uint8_t> payload) { out_.send(snapshot::kPagesTag, payload); });
    return static_cast<uint64_t>(std::count(pages.begin(), pages.end(), true));
  }

private:
  MessageWriter& out_;
  snapshot::ChunkOptions chunks_;
};

// Waits for one of `tags` from the target, skipping its keepalives; a
// refusal or failure becomes the error it names.
const snapshot::Section& await(MessageReader& in, const std::string& peer,
                               std::initializer_list<snapshot::Tag> tags, const char* waiting) {
  for (;;) {
    const snapshot::Section& s = in.next();
    if (s.tag == kWaitTag) continue;
    if (s.tag == kRefuseTag)
      throw Error(
          fmt::format("{} refused the program: {}", peer, decode_text(s.payload(), s.name())));
    if (s.tag == kFailTag)
      throw Error(fmt::format("{} failed to receive the program: {}", peer,
                              decode_text(s.payload(), s.name())));
    for (const snapshot::Tag& t : tags)
      if (s.tag == t) return s;
    throw Error(
        fmt::format("{} sent {} while this tern waited for {}", peer, tag_text(s.tag), waiting));
  }
}

class Migration {
public:
  Migration(program::ProgramControl& control, const MigrateRequest& request)
      : control_(control), request_(request) {}

  MigrateResult run() {
    const Key key = Key::load(request_.key_file);
    // Connected only once the program runs: a source still starting (its
    // code compiling, its snapshot loading) would keep the target waiting
    // for the offer, past its timeout.
    control_.program();
    ChannelOptions options;
    options.timeout = request_.timeout;
    channel_ = Channel::connect(request_.to, key, options);
    // The program ending meanwhile cancels the migration.
    control_.on_end([weak = std::weak_ptr<Channel>(channel_)] {
      if (auto ch = weak.lock()) ch->cancel();
    });
    out_.emplace(*channel_);
    in_.emplace(*channel_, request_.to);
    result_.to = request_.to;
    try {
      offer();
      precopy();
      control_.stop_and([this](program::Program& p) { return finish(p); });
    } catch (const ChannelCancelled&) {
      throw Error("the program ended before it could move");
    } catch (const ChannelError&) {
      throw;
    } catch (const Error& e) {
      abort(e.what());
      throw;
    }
    result_.bytes_sent = channel_->bytes_written();
    channel_->close();
    return result_;
  }

private:
  // The module and what the target must check before memory moves.
  void offer() {
    program::Program& p = control_.program();
    MessageWriter& out = *out_;
    out.header();
    out.send(snapshot::kHostTag, snapshot::encode_host(snapshot::current_host(p.engine_name())),
             true);
    const wasm::Module& m = p.module();
    module_sha256_ = m.sha256();
    out.send(snapshot::kModuleTag, snapshot::encode_module(module_sha256_, m.bytes.size()));
    out.send(snapshot::kWasmTag, m.bytes, true);
    Hello hello;
    hello.mode = request_.mode;
    hello.timeout_ms = static_cast<uint32_t>(
        std::clamp<int64_t>(request_.timeout.count(), 1, std::numeric_limits<uint32_t>::max()));
    for (const wasi::Preopen& d : p.wasi().preopens()) hello.guest_dirs.push_back(d.guest_path);
    out.send(kHelloTag, encode_hello(hello));
    out.flush();
    in_->header();
    await(*in_, request_.to, {kAcceptTag}, "the target's answer");
  }

  // Rounds of pages while the program runs (docs/migration-stream.md §5):
  // first every non-zero page, then those written since the previous
  // round, until what is left could go within --max-downtime at the pace
  // measured, or the rounds run out or stop shrinking. What is still dirty
  // then goes with the final state.
  void precopy() {
    if (request_.max_rounds == 0) return;
    runtime::ModuleInstance& instance = control_.program().instance();
    // A memory without a guard reservation may move when it grows: it is
    // only read with the program stopped.
    for (const runtime::Memory* m : instance.memories)
      if (!m->has_guard_region()) return;
    for (runtime::Memory* m : instance.memories) logs_.push_back(m->open_dirty_log());
    std::vector<std::vector<bool>> dirty = collect();
    for (size_t i = 0; i < dirty.size(); ++i) { // round 0: zero pages need not go
      const std::vector<bool> nonzero = snapshot::find_nonzero_pages(
          live_bytes(instance, i, dirty[i].size()), !instance.memories[i]->mirrored());
      for (size_t page = 0; page < dirty[i].size(); ++page)
        dirty[i][page] = dirty[i][page] && nonzero[page];
    }
    uint64_t previous = UINT64_MAX;
    uint32_t not_shrinking = 0;
    for (uint32_t round = 0;; ++round) {
      send_round(instance, round, dirty);
      dirty = collect();
      const uint64_t left = count(dirty);
      not_shrinking = left >= previous ? not_shrinking + 1 : 0;
      previous = left;
      const double expected_ms = left * ms_per_page_;
      if (expected_ms <= request_.max_downtime.count() || round + 1 >= request_.max_rounds ||
          not_shrinking >= 3)
        break;
    }
    // What is still in flight (socket buffers, the target decoding) would
    // otherwise be part of the pause: the program stops only once the
    // target has applied every round. Pages written meanwhile are caught
    // by the final collect().
    while (rounds_received_ < result_.rounds) receive_round_ack(true);
    pending_ = std::move(dirty);
  }

  // Reads the target's MRCV; without `wait`, only if one has arrived. A
  // target that failed says so (MFAL) instead.
  void receive_round_ack(bool wait) {
    if (!wait && !channel_->readable(std::chrono::milliseconds(0))) return;
    const snapshot::Section& s =
        await(*in_, request_.to, {kReceivedTag}, "the target to apply the pre-copy rounds");
    rounds_received_ = decode_round_end(s.payload(), s.name()).round + 1;
  }

  // The pages each log reports now, one flag per wasm page.
  std::vector<std::vector<bool>> collect() {
    std::vector<std::vector<bool>> out;
    for (runtime::DirtyLog& log : logs_) out.push_back(log.collect().wasm_pages());
    return out;
  }

  static uint64_t count(const std::vector<std::vector<bool>>& pages) {
    uint64_t n = 0;
    for (const auto& p : pages) n += std::count(p.begin(), p.end(), true);
    return n;
  }

  // Memory `i` as far as `pages` pages (grown, never shrunk, since).
  static std::span<const uint8_t> live_bytes(runtime::ModuleInstance& instance, size_t i,
                                             uint64_t pages) {
    return {instance.memories[i]->base(), pages * snapshot::kPageSize};
  }

  void send_round(runtime::ModuleInstance& instance, uint32_t round,
                  const std::vector<std::vector<bool>>& pages) {
    const auto start = Clock::now();
    PageSender sender(*out_, request_.compress);
    uint64_t sent = 0;
    for (size_t i = 0; i < pages.size(); ++i)
      sent += sender.send(static_cast<uint32_t>(i), *instance.memories[i],
                          live_bytes(instance, i, pages[i].size()), pages[i]);
    out_->send(kRoundTag, encode_round_end({round, sent}));
    out_->flush();
    ++result_.rounds;
    // The pace of the rounds so far predicts the final one's.
    round_ms_ += ms_between(start, Clock::now());
    round_pages_ += sent;
    if (round_pages_ > 0) ms_per_page_ = round_ms_ / static_cast<double>(round_pages_);
    receive_round_ack(false);
  }

  // On the program's thread, the program stopped: the final state, and
  // the handshake that hands the program over.
  bool finish(program::Program& p) {
    const auto stopped = Clock::now();
    util::trace_time("migration: program stopped");
    wasi::SaveOptions save;
    save.bundle_files = request_.bundle_files;
    snapshot::Snapshot s = p.capture({}, save);
    s.module.sha256 = module_sha256_; // not hashed again in the pause
    snapshot::WriteOptions write;
    write.compress = request_.compress;
    if (!logs_.empty()) { // after pre-copy: only what changed since
      std::vector<std::vector<bool>> last = collect();
      for (size_t i = 0; i < last.size(); ++i) {
        for (size_t page = 0; page < pending_[i].size() && page < last[i].size(); ++page)
          last[i][page] = last[i][page] || pending_[i][page];
        write.carried_pages.push_back(std::move(last[i]));
      }
    }
    MessageWriter& out = *out_;
    out.send(kFinalTag);
    snapshot::write_snapshot(s, *channel_, write);
    util::trace_time("migration: final state sent");
    ++result_.rounds;
    await(*in_, request_.to, {kReadyTag}, "the target to rebuild the program");
    util::trace_time("migration: target ready");
    // From here the target runs the program once it has the commit; it
    // confirms, and only then does this run end.
    out.send(kCommitTag);
    out.flush();
    committed_ = true;
    await(*in_, request_.to, {kRunningTag}, "the target's confirmation");
    result_.downtime_ms = ms_between(stopped, Clock::now());
    util::trace_time("migration: target runs the program");
    return true;
  }

  // Tells the target to drop what it has (best effort: the link may be
  // what failed).
  void abort(const std::string& why) {
    if (!channel_ || committed_) return;
    try {
      out_->send(kAbortTag, encode_text(why));
      out_->flush();
    } catch (const Error&) {
    }
  }

  program::ProgramControl& control_;
  const MigrateRequest& request_;
  std::shared_ptr<Channel> channel_;
  std::optional<MessageWriter> out_;
  std::optional<MessageReader> in_;
  MigrateResult result_;
  util::Sha256Digest module_sha256_{};
  bool committed_ = false;
  // Pre-copy: a dirty log per memory, the pages still to send, the pace.
  std::vector<runtime::DirtyLog> logs_;
  std::vector<std::vector<bool>> pending_;
  double round_ms_ = 0;
  uint64_t round_pages_ = 0;
  double ms_per_page_ = 0;
  uint32_t rounds_received_ = 0; // pre-copy rounds the target has applied
};

} // namespace

std::string MigrateRequest::to_request_line() const {
  std::string line = "migrate";
  if (bundle_files) line += " --bundle-files";
  if (!compress) line += " --no-compress";
  line += fmt::format(" -- to={}", to);
  if (!mode.empty()) line += " mode=" + mode;
  line += fmt::format(" max-rounds={} max-downtime={} timeout={} key={}", max_rounds,
                      max_downtime.count(), timeout.count(), key_file);
  return line;
}

MigrateRequest MigrateRequest::from_request(const program::ControlCommand& request) {
  MigrateRequest r;
  r.bundle_files = request.has_flag("--bundle-files");
  r.compress = !request.has_flag("--no-compress");
  const std::string& text = request.argument;
  for (size_t pos = 0; pos < text.size();) {
    const size_t eq = text.find('=', pos);
    if (eq == std::string::npos)
      throw Error(fmt::format("migrate: expected NAME=VALUE in '{:.100}'", text.substr(pos)));
    const std::string name = text.substr(pos, eq - pos);
    if (name == "key") { // the rest of the line
      r.key_file = text.substr(eq + 1);
      break;
    }
    size_t end = text.find(' ', eq);
    if (end == std::string::npos) end = text.size();
    const std::string value = text.substr(eq + 1, end - eq - 1);
    pos = end + 1;
    if (name == "to")
      r.to = value;
    else if (name == "mode")
      r.mode = value;
    else if (name == "max-rounds")
      r.max_rounds = static_cast<uint32_t>(std::min<uint64_t>(parse_number(name, value), 1u << 20));
    else if (name == "max-downtime")
      r.max_downtime =
          std::chrono::milliseconds(std::min<uint64_t>(parse_number(name, value), 86'400'000));
    else if (name == "timeout")
      r.timeout = std::chrono::milliseconds(std::max<uint64_t>(1, parse_number(name, value)));
    else
      throw Error(fmt::format("migrate: unknown setting '{:.100}'", name));
  }
  if (r.to.empty() || r.key_file.empty()) throw Error("migrate: to= and key= are required");
  return r;
}

std::string MigrateResult::line() const {
  return fmt::format("migrated to {}: {} rounds, {:.1f} MiB sent, downtime {:.1f} ms", to, rounds,
                     static_cast<double>(bytes_sent) / (1 << 20), downtime_ms);
}

MigrateResult migrate(program::ProgramControl& control, const MigrateRequest& request) {
  return Migration(control, request).run();
}

program::ProgramCommand migrate_command() {
  auto busy = std::make_shared<std::atomic<bool>>(false);
  return {"migrate",
          {"--bundle-files", "--no-compress"},
          [busy](const program::ControlCommand& request, program::ProgramControl& control) {
            const MigrateRequest r = MigrateRequest::from_request(request);
            if (busy->exchange(true)) throw Error("the program is already being migrated");
            struct Done {
              std::atomic<bool>& busy;
              ~Done() { busy = false; }
            } done{*busy};
            return "ok " + migrate(control, r).line();
          }};
}

} // namespace tern::migrate
