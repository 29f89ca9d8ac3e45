// Compiled code for this host made while the program runs (`tern run
// --mode auto`, runtime/tiering.h). A thread of tern hashes the module and
// looks for it in the cache first (code found there is ready within
// milliseconds, off the way to the first instruction). Otherwise a child
// process (forked, so it has the module without reading it again) loads
// the compiler, compiles, writes the cache entry and sends the artifact
// back through a pipe; the thread waits for it and loads it with tern's
// own ELF loader. The compiler never runs in tern's process, so the
// program's threads and memory are untouched by it. The child is started
// after `delay` (a program that ends sooner never forks one: short
// programs pay nothing for compiling) and never outlives tern: a program
// that ends first does not wait, the child is killed (and dies with tern
// however tern ends).
#pragma once

#include "aot/code_image.h"
#include "aot/compiler.h"
#include "runtime/tiering.h"
#include "util/unique_fd.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <thread>

namespace tern::aot {

class BackgroundCompile final : public runtime::PendingCode {
public:
  // `ready` is called once, from another thread, when the code is found in
  // the cache, made, or has failed.
  BackgroundCompile(std::shared_ptr<const wasm::Module> module, const CompileOptions& options,
                    const std::string& cache_dir, std::chrono::milliseconds delay,
                    std::function<void()> ready);
  ~BackgroundCompile() override;
  BackgroundCompile(const BackgroundCompile&) = delete;
  BackgroundCompile& operator=(const BackgroundCompile&) = delete;

  bool ready() const override;
  std::string wait() override;
  // The code (waits for it); throws tern::Error when there is none.
  std::shared_ptr<const CodeImage> code();

private:
  // The watcher thread: looks in the cache, waits out the delay, starts
  // the child, receives its answer (or gives up when the program ends first).
  void watch(std::shared_ptr<const wasm::Module> module, CompileOptions options,
             std::string cache_dir, std::chrono::milliseconds delay);
  void start_child(const wasm::Module& module, const util::Sha256Digest& hash,
                   const CompileOptions& options, const std::string& cache_dir,
                   bool lowest_priority);
  void receive(util::Sha256Digest hash);
  void finish(std::shared_ptr<const CodeImage> image, std::string error);

  std::function<void()> ready_callback_;
  pid_t child_ = -1; // set and reaped by the watcher; killed by the destructor after it
  util::UniqueFd from_child_;
  util::UniqueFd stop_; // eventfd: the watcher gives up
  std::thread watcher_;

  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::shared_ptr<const CodeImage> image_;
  std::string error_;
};

} // namespace tern::aot
