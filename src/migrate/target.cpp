#include "migrate/target.h"

#include "migrate/stream.h"
#include "snapshot/capture.h"
#include "snapshot/pages.h"
#include "tern/error.h"
#include "util/trace_time.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"

#include <algorithm>
#include <condition_variable>
#include <fmt/format.h>
#include <mutex>
#include <thread>

namespace tern::migrate {
namespace {

using namespace std::chrono_literals;

// Sends MWAI while a long step (compiling) runs, so the source's timeout
// measures silence, not work. The channel is not used by anyone else
// meanwhile.
class Keepalive {
public:
  Keepalive(MessageWriter& out, std::chrono::milliseconds period)
      : thread_([this, &out, period] { loop(out, period); }) {}
  ~Keepalive() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

private:
  void loop(MessageWriter& out, std::chrono::milliseconds period) {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, period, [this] { return done_; })) {
      try {
        out.send(kWaitTag);
        out.flush();
      } catch (const Error&) {
        return; // the step's end will find the channel broken
      }
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The source's opening: its description, the module and the hello.
struct Opening {
  snapshot::HostInfo host;
  util::Sha256Digest sha256{};
  uint64_t module_size = 0;
  std::vector<uint8_t> binary;
  Hello hello;
};

Opening read_opening(MessageReader& in) {
  Opening o;
  const snapshot::Section* s = &in.next();
  if (s->tag == snapshot::kHostTag) {
    snapshot::PayloadReader r(s->payload(), s->name());
    o.host = snapshot::decode_host(r);
    s = &in.next();
  }
  if (s->tag != snapshot::kModuleTag)
    throw Error(fmt::format("the stream has {} where the module identity (MODL) belongs",
                            tag_text(s->tag)));
  {
    snapshot::PayloadReader r(s->payload(), s->name());
    o.module_size = snapshot::decode_module(r, o.sha256);
  }
  s = &in.next();
  if (s->tag != snapshot::kWasmTag)
    throw Error(fmt::format("the stream has {} where the module (WASM) belongs", tag_text(s->tag)));
  if (s->length != o.module_size)
    throw Error(fmt::format("the module has {} bytes, MODL says {}", s->length, o.module_size));
  o.binary.assign(s->payload().begin(), s->payload().end());
  s = &in.next();
  if (s->tag != kHelloTag)
    throw Error(fmt::format("the stream has {} where the hello (MHLO) belongs", tag_text(s->tag)));
  o.hello = decode_hello(s->payload(), s->name());
  return o;
}

// Everything the program will find must be granted here: a directory the
// program had that serve does not map is a refusal now, before any memory
// is sent (the stream's host paths mean nothing on this host).
void check_directories(const Hello& hello, const wasi::RestoreOptions& wasi) {
  if (wasi.dirs_from_snapshot) return; // the user accepts the source's paths
  for (const std::string& guest : hello.guest_dirs) {
    const bool granted = std::any_of(wasi.dirs.begin(), wasi.dirs.end(),
                                     [&](const wasi::Preopen& p) { return p.guest_path == guest; });
    if (!granted)
      throw Error(fmt::format("the program uses the directory {}, which this server does not "
                              "grant (serve --dir HOST::{}, or --dir-from-snapshot)",
                              guest, guest));
  }
}

std::shared_ptr<wasm::Module> decode_checked(Opening& o) {
  if (util::sha256(o.binary) != o.sha256)
    throw Error("the module does not match its sha-256 in MODL");
  auto m = std::make_shared<wasm::Module>(wasm::decode_module(std::move(o.binary)));
  m->known_sha256 = o.sha256;
  wasm::validate_module(*m);
  return m;
}

// Decodes one pre-copy round's pages into the instance.
class RoundReceiver {
public:
  explicit RoundReceiver(runtime::ModuleInstance& instance) : instance_(instance) {}

  void memory_header(const snapshot::Section& s) {
    snapshot::PayloadReader r(s.payload(), s.name());
    uint32_t index = 0;
    const snapshot::MemoryImage header = snapshot::decode_memory_header(r, index);
    decoder_ =
        std::make_unique<snapshot::ChunkDecoder>(index, header.pages, memory(index, header.pages));
  }

  // Memory `index` grown to `pages`, for the pages of a round or of the
  // final state. Prepared (cleared of what instantiation wrote) only the
  // first time: later rounds and the final state add to what the earlier
  // ones brought. (Clearing each time wiped an imported memory, a
  // wasi-threads program's env.memory, at every round.)
  std::span<uint8_t> memory(uint32_t index, uint64_t pages) {
    if (index < prepared_.size() && prepared_[index])
      return snapshot::grow_memory_for_restore(instance_, index, pages);
    const std::span<uint8_t> bytes = snapshot::prepare_memory_for_restore(instance_, index, pages);
    if (index >= prepared_.size()) prepared_.resize(index + 1, false);
    prepared_[index] = true;
    return bytes;
  }

  void pages(const snapshot::Section& s) {
    if (!decoder_) throw Error(fmt::format("{} comes before any MEMD", s.name()));
    decoder_->decode(s.payload(), s.name());
  }

  void end_round() { decoder_.reset(); }

private:
  runtime::ModuleInstance& instance_;
  std::unique_ptr<snapshot::ChunkDecoder> decoder_;
  std::vector<bool> prepared_; // per memory index
};

} // namespace

Received receive_program(Channel& channel, const TargetOptions& options,
                         const std::function<bool()>& may_run) {
  auto phase = [&](const char* name) {
    if (options.at_phase) options.at_phase(name);
  };
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  MessageReader in(channel, channel.peer());
  MessageWriter out(channel);
  in.header();
  Opening opening = read_opening(in);
  const Hello& hello = opening.hello;
  channel.set_timeout(std::chrono::milliseconds(hello.timeout_ms));
  out.header();
  phase("hello");

  Received received;
  received.mode = hello.mode.empty() ? options.default_mode : hello.mode;
  log(fmt::format("{} offers a program ({} KiB of module, from {} {}), mode {}", channel.peer(),
                  opening.module_size / 1024, opening.host.arch, opening.host.engine,
                  received.mode));
  // Refusals before any memory moves: the source keeps running meanwhile.
  try {
    check_directories(hello, options.wasi);
    auto module = decode_checked(opening);
    const program::EngineSpec engine = options.engine(received.mode);
    const auto period = std::clamp(std::chrono::milliseconds(hello.timeout_ms / 4), 100ms, 1000ms);
    Keepalive keepalive(out, period);
    received.program = program::Program::prepare_restore(
        std::move(module), engine,
        options.participants ? options.participants() : program::Participants{});
  } catch (const ChannelError&) {
    throw;
  } catch (const std::exception& e) {
    out.send(kRefuseTag, encode_text(e.what()));
    out.flush();
    throw Error(fmt::format("refused the program from {}: {}", channel.peer(), e.what()));
  }
  out.send(kAcceptTag);
  out.flush();
  log(fmt::format("{}: accepted; receiving memory", channel.peer()));

  // Pre-copy rounds, then the final state. A failure here is reported to
  // the source (MFAL) when the link still works.
  auto failed = [&](const std::string& what) {
    try {
      out.send(kFailTag, encode_text(what));
      out.flush();
    } catch (const Error&) {
    }
    return Error(fmt::format("migration from {} failed: {}", channel.peer(), what));
  };
  runtime::ModuleInstance& instance = received.program->instance();
  RoundReceiver round(instance);
  snapshot::Snapshot final_state;
  try {
    for (bool done = false; !done;) {
      const snapshot::Section& s = in.next();
      if (s.tag == snapshot::kMemoryTag) {
        round.memory_header(s);
      } else if (s.tag == snapshot::kPagesTag) {
        round.pages(s);
      } else if (s.tag == kRoundTag) {
        const RoundEnd end = decode_round_end(s.payload(), s.name());
        round.end_round();
        received.rounds = end.round + 1;
        log(fmt::format("{}: round {} received ({} pages)", channel.peer(), end.round,
                        end.pages_sent));
        phase("precopy");
        out.send(kReceivedTag, encode_round_end(end));
        out.flush();
      } else if (s.tag == kAbortTag) {
        throw Error("the source gave up: " + decode_text(s.payload(), s.name()));
      } else if (s.tag == kFinalTag) {
        done = true;
      } else {
        throw Error(fmt::format("unexpected {} during pre-copy", tag_text(s.tag)));
      }
    }
    phase("final");
    util::trace_time("migration: final state arrives");
    snapshot::ReadOptions read;
    read.memory_target = [&](uint32_t index, const snapshot::MemoryImage& header,
                             const snapshot::Snapshot&) {
      return round.memory(index, header.pages);
    };
    final_state = snapshot::read_snapshot(channel, read);
    util::trace_time("migration: final state read");
    received.program->finish_restore(final_state, options.wasi);
    util::trace_time("migration: program rebuilt");
  } catch (const ChannelError&) {
    throw;
  } catch (const std::exception& e) {
    throw failed(e.what());
  }
  ++received.rounds; // the final one
  // Asked before MRDY rather than after the commit: the answer (a round
  // trip to serve's process) is then not part of the program's pause.
  if (!may_run()) throw failed("this server runs one program only (--once) and has one");
  log(fmt::format("{}: program rebuilt ({} rounds); waiting for the commit", channel.peer(),
                  received.rounds));
  phase("ready");
  out.send(kReadyTag);
  out.flush();

  const snapshot::Section& answer = in.next();
  if (answer.tag == kAbortTag)
    throw Error(fmt::format("{} gave up before committing: {}", channel.peer(),
                            decode_text(answer.payload(), answer.name())));
  if (answer.tag != kCommitTag)
    throw failed(fmt::format("unexpected {} instead of the commit", tag_text(answer.tag)));
  phase("commit");
  util::trace_time("migration: commit received");
  out.send(kRunningTag);
  out.flush();
  // The program runs here now: a gateway standby takes its connections
  // over at once, rather than once the program's supervisor is set up.
  received.program->committed();
  return received;
}

} // namespace tern::migrate
