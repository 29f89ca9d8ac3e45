// What dirty-page tracking (runtime/dirty_pages.h) costs a running program
// (docs/performance.md, "Dirty-page tracking"). For each benchmark kernel,
// in turn, repeatedly:
//   plain      the program as `tern run` runs it;
//   tracked    with a dirty log open on its memory, never collected (what
//              an --incremental run pays between checkpoints);
//   collected  with a thread collecting the log every P ms, as live
//              migration's pre-copy rounds do: each collect write-protects
//              again what was written, so the next write to a page faults
//              again.
// Measured: the program thread's CPU time (user + system: the kernel's work
// for page faults is in it) and its minor page faults; the collector's own
// CPU time is reported apart. Medians of --reps runs, taken alternately.
//
//   tern_dirty_bench [--mode interp|aot] [--reps 5] [--period-ms 10]
//                    [--mechanism userfaultfd|mprotect|hash] KERNEL.wasm...
#include "aot/artifact.h"
#include "aot/compiler.h"
#include "aot/engine.h"
#include "interp/engine.h"
#include "program/program.h"
#include "runtime/dirty_pages.h"
#include "util/file.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <ctime>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <vector>

namespace {

using namespace tern;

double thread_cpu_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

long thread_minor_faults() {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

struct Options {
  std::string mode = "interp";
  int reps = 5;
  int period_ms = 10;
  std::optional<runtime::DirtyMechanism> mechanism;
  std::vector<std::string> kernels;
};

enum class Variant { Plain, Tracked, Collected };
constexpr Variant kVariants[] = {Variant::Plain, Variant::Tracked, Variant::Collected};

struct Sample {
  double cpu_ms = 0;
  long faults = 0;
  double collector_ms = 0;
  int collects = 0;
};

// Collects every log every `period` until stopped.
class Collector {
public:
  Collector(std::vector<runtime::DirtyLog>& logs, std::chrono::milliseconds period)
      : thread_([this, &logs, period] {
          const double start = thread_cpu_ms();
          std::unique_lock lock(mutex_);
          while (!cv_.wait_for(lock, period, [this] { return done_; })) {
            for (auto& log : logs) log.collect();
            ++collects_;
          }
          cpu_ms_ = thread_cpu_ms() - start;
        }) {}
  // Stops and returns (collector CPU ms, collects).
  std::pair<double, int> stop() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
    return {cpu_ms_, collects_};
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  double cpu_ms_ = 0;
  int collects_ = 0;
  std::thread thread_;
};

program::EngineSpec engine_for(const Options& o) {
  if (o.mode == "interp") return {"interp", [] { return interp::make_engine(); }};
  return {"aot", [] {
            return aot::make_engine([](const wasm::Module& m, const util::Sha256Digest& hash) {
              static std::map<util::Sha256Digest, std::vector<uint8_t>> artifacts;
              auto& bytes = artifacts[hash];
              if (bytes.empty()) {
                auto compiled = aot::compile_artifact(m, hash, {});
                if (!compiled.ok()) throw Error(compiled.error);
                bytes = std::move(compiled.value);
              }
              return std::shared_ptr<const aot::CodeImage>(
                  aot::load_artifact(bytes, hash, "bench"));
            });
          }};
}

Sample run_once(const std::shared_ptr<const wasm::Module>& module, const std::string& name,
                const Options& o, Variant variant) {
  wasi::WasiOptions wasi;
  wasi.args = {name};
  wasi.stdout_path = "/dev/null";
  auto program = program::Program::create(module, wasi, engine_for(o));
  std::vector<runtime::DirtyLog> logs;
  if (variant != Variant::Plain)
    for (runtime::Memory* m : program->memories()) {
      logs.push_back(m->open_dirty_log(o.mechanism));
      logs.back().collect(); // what came before the run is not the run's
    }
  std::optional<Collector> collector;
  if (variant == Variant::Collected)
    collector.emplace(logs, std::chrono::milliseconds(o.period_ms));
  Sample s;
  const long faults = thread_minor_faults();
  const double start = thread_cpu_ms();
  const runtime::ExecOutcome out = program->run();
  s.cpu_ms = thread_cpu_ms() - start;
  s.faults = thread_minor_faults() - faults;
  if (collector) std::tie(s.collector_ms, s.collects) = collector->stop();
  if (out.kind != runtime::ExecOutcome::Kind::Returned &&
      !(out.kind == runtime::ExecOutcome::Kind::Exited && out.exit_code == 0))
    throw Error(fmt::format("{}: the kernel did not end normally", name));
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--mode")
      o.mode = value();
    else if (a == "--reps")
      o.reps = std::stoi(value());
    else if (a == "--period-ms")
      o.period_ms = std::stoi(value());
    else if (a == "--mechanism") {
      const std::string m = value();
      for (auto k : {runtime::DirtyMechanism::Userfaultfd, runtime::DirtyMechanism::Mprotect,
                     runtime::DirtyMechanism::Hash})
        if (runtime::mechanism_name(k) == m) o.mechanism = k;
      if (!o.mechanism) throw Error("--mechanism " + m + ": userfaultfd, mprotect or hash");
    } else
      o.kernels.push_back(a);
  }
  if (o.mode != "interp" && o.mode != "aot") throw Error("--mode: interp or aot");
  if (o.kernels.empty()) throw Error("usage: tern_dirty_bench [options] KERNEL.wasm...");
  return o;
}

int run(const Options& o) {
  {
    wasm::MemoryType t;
    t.limits.min = 1;
    runtime::Memory probe(t);
    fmt::print("# mode {}, {} reps, collect every {} ms; tracked by {}\n", o.mode, o.reps,
               o.period_ms, probe.open_dirty_log(o.mechanism).description());
  }
  fmt::print("# program thread CPU ms (user+sys), median; ratio to plain; minor faults; "
             "collector CPU ms\n");
  fmt::print("{:<10} {:>9} {:>9} {:>6} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9}\n", "kernel",
             "plain", "tracked", "ratio", "collected", "ratio", "flt", "flt-trk", "flt-col",
             "collects", "collector");
  double log_tracked = 0, log_collected = 0;
  for (const std::string& path : o.kernels) {
    auto m = std::make_shared<wasm::Module>(wasm::decode_module(util::read_file(path)));
    wasm::validate_module(*m);
    const std::string name = path.substr(path.rfind('/') + 1);
    run_once(m, name, o, Variant::Plain); // warm: compiles, page cache
    std::map<Variant, std::vector<Sample>> samples;
    for (int r = 0; r < o.reps; ++r)
      for (Variant v : kVariants) samples[v].push_back(run_once(m, name, o, v));
    auto med = [&](Variant v, auto field) {
      std::vector<double> xs;
      for (const Sample& s : samples[v]) xs.push_back(double(field(s)));
      return median(xs);
    };
    auto cpu = [](const Sample& s) { return s.cpu_ms; };
    auto faults = [](const Sample& s) { return s.faults; };
    const double plain = med(Variant::Plain, cpu), tracked = med(Variant::Tracked, cpu),
                 collected = med(Variant::Collected, cpu);
    log_tracked += std::log(tracked / plain);
    log_collected += std::log(collected / plain);
    fmt::print("{:<10} {:>9.1f} {:>9.1f} {:>6.3f} {:>9.1f} {:>6.3f} {:>8.0f} {:>8.0f} {:>8.0f} "
               "{:>8.0f} {:>9.1f}\n",
               name.substr(0, name.rfind('.')), plain, tracked, tracked / plain, collected,
               collected / plain, med(Variant::Plain, faults), med(Variant::Tracked, faults),
               med(Variant::Collected, faults),
               med(Variant::Collected, [](const Sample& s) { return s.collects; }),
               med(Variant::Collected, [](const Sample& s) { return s.collector_ms; }));
  }
  const double n = double(o.kernels.size());
  fmt::print("{:<10} {:>9} {:>9} {:>6.3f} {:>9} {:>6.3f}\n", "geomean", "", "",
             std::exp(log_tracked / n), "", std::exp(log_collected / n));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    fmt::print(stderr, "tern_dirty_bench: {}\n", e.what());
    return 1;
  }
}
