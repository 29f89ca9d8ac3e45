// Checkpoint and restore cost for a guest that touched 16 MiB, 256 MiB and
// 1 GiB of memory (docs/performance.md, "Snapshots"). For each size: the
// pause (capture + fork of the background writer), the synchronous write
// (the pause without fork), the background write's duration, restore time,
// snapshot and raw size, and memcpy of the same bytes for reference.
//
//   tern_snapshot_bench [--mode interp|aot] [--sizes 16,256,1024] [--threads N]
//                       [--level L] [--dir DIR] [--quick 1] [--keep 1]
// --mode aot runs the guest as compiled code (with exact stable points, so
// that it stops where the interpreter does). The pause includes the copy a
// background write needs of a mirrored memory
// (snapshot::copy_shared_memories), which code compiled with wide addresses
// has; by default compiled code has a private memory and nothing is copied.
// --quick 1 measures the pause once instead of 5 times; --keep 1
// leaves the snapshot files in DIR.
#include "aot/artifact.h"
#include "aot/compiler.h"
#include "aot/engine.h"
#include "interp/engine.h"
#include "runtime/store.h"
#include "runtime/thread.h"
#include "snapshot/background.h"
#include "snapshot/capture.h"
#include "snapshot/format.h"
#include "wasm/decoder.h"
#include "wasm/validator.h"
#include "wat.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fmt/format.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace tern;
using Clock = std::chrono::steady_clock;

// Grows memory to $pages, writes a word into every page, then spins at a
// loop header where the benchmark stops it.
const char* const kGuest = R"(
(module
  (memory 1)
  (func (export "touch") (param $pages i32)
    (local $at i32)
    (drop (memory.grow (i32.sub (local.get $pages) (i32.const 1))))
    (loop $touch
      (i32.store (local.get $at) (i32.const 1))
      (local.set $at (i32.add (local.get $at) (i32.const 65536)))
      (br_if $touch (i32.lt_u (local.get $at) (i32.mul (local.get $pages) (i32.const 65536)))))
    (loop $spin (br $spin))))
)";

double thread_cpu_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Contents of realistic compressibility: small integers from an LCG, like
// a program's arrays and heap (zstd -1 takes it to about 45%).
void fill(uint8_t* p, uint64_t bytes) {
  uint32_t x = 1;
  for (uint64_t i = 0; i < bytes; i += 4) {
    x = x * 1103515245u + 12345u;
    uint32_t v = (x >> 16) % 1000;
    std::memcpy(p + i, &v, 4);
  }
}

struct Options {
  std::string mode = "interp";
  std::vector<uint64_t> sizes_mib = {16, 256, 1024};
  unsigned threads = 2;
  int level = 1;
  std::string dir = "/tmp";
  bool quick = false;
  bool keep = false; // leave the snapshot files (e.g. for tern inspect)
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--mode") {
      if (value != "interp" && value != "aot") throw std::runtime_error("--mode interp|aot");
      o.mode = value;
    } else if (flag == "--sizes") {
      o.sizes_mib.clear();
      for (size_t pos = 0; pos < value.size();) {
        size_t comma = value.find(',', pos);
        o.sizes_mib.push_back(std::stoull(value.substr(pos, comma - pos)));
        pos = comma == std::string::npos ? value.size() : comma + 1;
      }
    } else if (flag == "--threads") {
      o.threads = static_cast<unsigned>(std::stoul(value));
    } else if (flag == "--level") {
      o.level = std::stoi(value);
    } else if (flag == "--keep") {
      o.keep = value == "1";
    } else if (flag == "--quick") {
      o.quick = value == "1";
    } else if (flag == "--dir") {
      o.dir = value;
    } else {
      throw std::runtime_error("unknown flag " + flag);
    }
  }
  return o;
}

std::shared_ptr<const wasm::Module> guest_module() {
  auto m = std::make_shared<wasm::Module>(wasm::decode_module(test::wat_to_wasm(kGuest)));
  wasm::validate_module(*m);
  return m;
}

// The engine of --mode: the interpreter, or code compiled now (the plugin).
std::unique_ptr<runtime::Engine> make_engine(const std::string& mode) {
  if (mode == "interp") return interp::make_engine();
  return aot::make_engine([](const wasm::Module& m, const util::Sha256Digest& hash) {
    aot::CompileOptions options;
    options.exact_points = true;
    auto artifact = aot::compile_artifact(m, hash, options);
    if (!artifact.ok()) throw std::runtime_error("cannot compile the guest: " + artifact.error);
    return std::shared_ptr<const aot::CodeImage>(
        aot::load_artifact(artifact.value, hash, "the guest"));
  });
}

struct Row {
  double pause_best_ms, pause_median_ms, pause_cpu_ms;
  double sync_write_ms, background_ms, restore_ms, memcpy_ms;
  uint64_t snapshot_bytes, raw_bytes;
};

Row measure(const std::shared_ptr<const wasm::Module>& module, uint64_t mib, const Options& o) {
  const uint32_t pages = static_cast<uint32_t>(mib * 16);
  Row row{};
  row.raw_bytes = uint64_t(pages) * 65536;
  const std::string path = fmt::format("{}/tern-bench-{}-{}.snap", o.dir, ::getpid(), mib);
  snapshot::CaptureOptions capture_options;
  capture_options.engine = o.mode;
  snapshot::WriteOptions write_options;
  write_options.threads = o.threads;
  write_options.zstd_level = o.level;

  runtime::Store store(make_engine(o.mode));
  runtime::Thread thread(store);
  runtime::ModuleInstance* inst = store.instantiate(module, {}, thread);
  store.interrupt().set_counting(true);
  thread.stop_at = 1 + pages + 1; // entry, the touch loop, the first spin
  const runtime::Slot arg = pages;
  if (store.engine().call(thread, inst->find_func_export("touch"), {&arg, 1}, {}).kind !=
      runtime::ExecOutcome::Kind::Suspended)
    throw std::runtime_error("the guest did not stop");
  fill(inst->memory0()->base(), row.raw_bytes);

  // The pause first, in a process that has not written a snapshot itself
  // (a background writer's buffers live in the child). Wall time is at the
  // mercy of other load on the machine (a preemption costs milliseconds),
  // so report the best and the median of a few, and the median CPU time of
  // the pausing thread (user + system, the fork included).
  std::vector<double> wall, cpu;
  const int reps = o.quick ? 1 : 5;
  for (int rep = 0; rep < reps; ++rep) {
    auto t0 = Clock::now();
    const double cpu0 = thread_cpu_ms();
    std::vector<snapshot::ThreadImage> threads = {{0, store.engine().capture(thread)}};
    snapshot::Snapshot snap =
        snapshot::capture_instance(*inst, std::move(threads), capture_options);
    snapshot::copy_shared_memories(*inst, snap);
    snapshot::BackgroundWrite writer = snapshot::start_background_write(path, snap, write_options);
    wall.push_back(ms_since(t0));
    cpu.push_back(thread_cpu_ms() - cpu0);
    if (!writer.forked()) throw std::runtime_error("fork failed");
    writer.wait();
    row.background_ms = ms_since(t0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  row.pause_best_ms = wall.front();
  row.pause_median_ms = wall[wall.size() / 2];
  row.pause_cpu_ms = cpu[cpu.size() / 2];
  {
    auto t0 = Clock::now();
    std::vector<snapshot::ThreadImage> threads = {{0, store.engine().capture(thread)}};
    snapshot::Snapshot snap =
        snapshot::capture_instance(*inst, std::move(threads), capture_options);
    snapshot::write_snapshot_file(path + ".sync", snap, write_options);
    row.sync_write_ms = ms_since(t0);
    ::unlink((path + ".sync").c_str());
  }
  {
    std::vector<uint8_t> copy(row.raw_bytes, 1); // faulted in before timing
    auto t0 = Clock::now();
    std::memcpy(copy.data(), inst->memory0()->base(), row.raw_bytes);
    row.memcpy_ms = ms_since(t0);
  }
  // Size and restore of what the forked child wrote.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) row.snapshot_bytes = static_cast<uint64_t>(st.st_size);
  {
    auto t0 = Clock::now();
    runtime::Store store2(make_engine(o.mode));
    runtime::Thread thread2(store2);
    runtime::ModuleInstance* inst2 =
        store2.instantiate(module, {}, thread2, runtime::InitMode::ForRestore);
    // Pages are decoded straight into the fresh instance's memory.
    snapshot::ReadOptions read_options;
    read_options.memory_target = [&](uint32_t index, const snapshot::MemoryImage& header,
                                     const snapshot::Snapshot& so_far) {
      snapshot::check_module(so_far, module->sha256());
      return snapshot::prepare_memory_for_restore(*inst2, index, header.pages);
    };
    snapshot::Snapshot snap = snapshot::read_snapshot_file(path, read_options);
    snapshot::apply_snapshot(snap, *inst2);
    store2.engine().restore(thread2, *inst2, snap.threads[0].view);
    row.restore_ms = ms_since(t0);
    if (std::memcmp(inst2->memory0()->base(), inst->memory0()->base(), row.raw_bytes) != 0)
      throw std::runtime_error("restored memory differs");
  }
  if (!o.keep) ::unlink(path.c_str());
  return row;
}

} // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    const auto module = guest_module();
    fmt::print("mode {}; compression: zstd level {}, {} thread(s); files in {}\n", o.mode, o.level,
               o.threads, o.dir);
    fmt::print("{:>9} {:>23} {:>10} {:>11} {:>11} {:>10} {:>10} {:>10} {:>10}\n", "", "pause ms",
               "pause ms", "sync write", "background", "restore", "snapshot", "raw", "memcpy");
    fmt::print("{:>9} {:>23} {:>10} {:>11} {:>11} {:>10} {:>10} {:>10} {:>10}\n", "touched",
               "best / median (wall)", "(cpu)", "ms", "write ms", "ms", "MiB", "MiB", "ms");
    for (uint64_t size : o.sizes_mib) {
      const Row r = measure(module, size, o);
      fmt::print(
          "{:>9} {:>23} {:>10.3f} {:>11.1f} {:>11.1f} {:>10.1f} {:>10.1f} {:>10.1f} {:>10.1f}\n",
          fmt::format("{} MiB", size),
          fmt::format("{:.3f} / {:.3f}", r.pause_best_ms, r.pause_median_ms), r.pause_cpu_ms,
          r.sync_write_ms, r.background_ms, r.restore_ms, r.snapshot_bytes / 1048576.0,
          r.raw_bytes / 1048576.0, r.memcpy_ms);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "tern_snapshot_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
