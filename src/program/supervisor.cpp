#include "program/supervisor.h"

#include "program/control_socket.h"
#include "program/incremental.h"
#include "program/signals.h"
#include "snapshot/background.h"
#include "tern/error.h"
#include "tern/internal_error.h"
#include "util/file.h"

#include <algorithm>
#include <bit>
#include <condition_variable>
#include <deque>
#include <fmt/format.h>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace tern::program {
namespace {

using Clock = std::chrono::steady_clock;

// --- Requests ----------------------------------------------------------------

enum class Reason { Signal, Terminate, Timer, Control, Guest, Count, EveryPoints };

const char* reason_name(Reason r) {
  switch (r) {
  case Reason::Signal:
    return "signal";
  case Reason::Terminate:
    return "SIGTERM";
  case Reason::Timer:
    return "timer";
  case Reason::Control:
    return "control socket";
  case Reason::Guest:
    return "tern.checkpoint()";
  case Reason::Count:
    return "--checkpoint-at";
  case Reason::EveryPoints:
    return "--checkpoint-every-points";
  }
  return "?";
}

struct Request {
  Reason reason = Reason::Signal;
  std::string path; // "" = the policy's
  bool stop = false;
  std::optional<ControlReply> reply; // control requests: "ok PATH" / "error ..."
  // A command's work at the stop (ProgramControl::stop_and) instead of a
  // checkpoint, and where its outcome goes.
  std::function<bool(Program&)> at_stop = {};
  std::shared_ptr<std::promise<bool>> at_stop_done = {};
  // Only tells a program held by --pause-at that a command has finished.
  bool command_finished = false;

  // Answers a request that will not be carried out.
  void refuse(const std::string& why) {
    if (reply) reply->error(why);
    if (at_stop_done) at_stop_done->set_exception(std::make_exception_ptr(Error(why)));
  }
};

// Requests from other threads (timer, control socket) on their way to the
// program's thread. Before the program runs they wait here; while it runs
// each one raises its checkpoint flag; once it has ended they are answered
// at once.
class RequestQueue {
public:
  void push(Request r) {
    std::unique_lock lock(mutex_);
    if (closed_) {
      const std::string why = *closed_;
      lock.unlock();
      r.refuse(why);
      return;
    }
    queue_.push_back(std::move(r));
    if (interrupt_) interrupt_->request();
    cv_.notify_all();
  }

  // Blocks until there is a request (a program held by --pause-at).
  std::vector<Request> wait_take() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return !queue_.empty() || closed_; });
    std::vector<Request> out(std::make_move_iterator(queue_.begin()),
                             std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
  }

  size_t size() {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

  std::vector<Request> take() {
    std::lock_guard lock(mutex_);
    std::vector<Request> out(std::make_move_iterator(queue_.begin()),
                             std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
  }

  // The program runs: requests stop it from now on, and those already here
  // at its first stable point.
  void arm(runtime::Interrupt& interrupt) {
    std::lock_guard lock(mutex_);
    interrupt_ = &interrupt;
    if (!queue_.empty()) interrupt.request();
  }

  // No checkpoint can be taken any more: everything waiting, and every
  // later request, is answered with `error WHY`.
  void close(const std::string& why) {
    std::deque<Request> left;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = why;
      interrupt_ = nullptr;
      left.swap(queue_);
    }
    cv_.notify_all();
    for (Request& r : left) r.refuse(why);
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  runtime::Interrupt* interrupt_ = nullptr;
  std::optional<std::string> closed_;
};

// What the control socket's `status` reports; the program's thread and the
// writer update it.
struct Status {
  enum class Phase { Starting, Running, Ended };
  std::mutex mutex;
  Phase phase = Phase::Starting;
  uint64_t written = 0;
  uint64_t failed = 0;
  std::string last_path;
  std::string last_error;
};

// --- Periodic checkpoints ----------------------------------------------------

// Asks for a checkpoint `period` after restart(): when the program starts
// and each time a periodic checkpoint has been written (or has failed).
// Between the request and the next restart() it asks nothing, so ticks
// that would fall while a checkpoint is taken or written are skipped, and
// the program runs at least `period` between two periodic checkpoints.
class PeriodicTimer {
public:
  PeriodicTimer(std::chrono::milliseconds period, RequestQueue& queue)
      : period_(period), queue_(queue), thread_([this] { loop(); }) {}
  ~PeriodicTimer() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void restart() {
    {
      std::lock_guard lock(mutex_);
      due_ = Clock::now() + period_;
    }
    cv_.notify_all();
  }

private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!done_) {
      if (!due_) {
        cv_.wait(lock);
        continue;
      }
      if (Clock::now() < *due_) {
        cv_.wait_until(lock, *due_);
        continue;
      }
      due_.reset();
      lock.unlock();
      queue_.push(Request{Reason::Timer, "", false, std::nullopt});
      lock.lock();
    }
  }

  const std::chrono::milliseconds period_;
  RequestQueue& queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<Clock::time_point> due_;
  bool done_ = false;
  std::thread thread_; // last: starts once the members above exist
};

// --- Writing -------------------------------------------------------------------

// Writes snapshots. A background write is watched by its own thread, which
// reports it as soon as the child is done (the program goes on meanwhile).
// At most one runs at a time: a new checkpoint waits for the previous one,
// so snapshots land in order.
class Writer {
public:
  // How a write went: the error message ("" on success), and what was written.
  struct Outcome {
    std::string error;
    std::optional<snapshot::WrittenSnapshot> written;
  };
  using Done = std::function<void(const Outcome&)>;
  // Runs after a successful write, where the write ran (an incremental
  // link's head name).
  using Then = std::function<void()>;

  explicit Writer(Status& status) : status_(status) {}
  ~Writer() { wait(); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Writes and reports.
  Outcome write_now(const std::string& path, const snapshot::Snapshot& s,
                    const snapshot::WriteOptions& options, const Then& then = {}) {
    wait();
    Outcome out;
    try {
      out.written = snapshot::write_snapshot_file(path, s, options);
      if (then) then();
    } catch (const std::exception& e) {
      out = {e.what(), std::nullopt};
    }
    report(path, out.error);
    return out;
  }

  // Calls `done` with the outcome, on the watcher thread, once written.
  void write_in_background(const std::string& path, const snapshot::Snapshot& s,
                           const snapshot::WriteOptions& options, Done done,
                           const Then& then = {}) {
    wait();
    auto write = std::make_shared<snapshot::BackgroundWrite>(
        snapshot::start_background_write(path, s, options, then));
    watcher_ = std::thread([this, write, path, done = std::move(done)] {
      Outcome out;
      try {
        write->wait();
        out.written = snapshot::written_snapshot(*write);
      } catch (const std::exception& e) {
        out = {e.what(), std::nullopt};
      }
      report(path, out.error);
      done(out);
    });
  }

  // Waits for the background write, if one is running.
  void wait() {
    if (watcher_.joinable()) watcher_.join();
  }

private:
  void report(const std::string& path, const std::string& error) {
    std::lock_guard lock(status_.mutex);
    if (error.empty()) {
      status_.last_path = path;
      status_.last_error.clear();
      ++status_.written;
    } else {
      status_.last_error = error;
      ++status_.failed;
      fmt::print(stderr, "tern: error: checkpoint to {} failed: {}\n", path, error);
    }
  }

  Status& status_;
  std::thread watcher_;
};

std::string reply_for(const std::string& path, const std::string& error) {
  return error.empty() ? "ok " + path : "error " + error;
}

// --- Commands that take a while ------------------------------------------------

// Runs ProgramCommands on threads of their own and gives them the
// program; end() makes them give up and waits for them.
class Commands final : public ProgramControl {
public:
  explicit Commands(RequestQueue& queue) : queue_(queue) {}
  ~Commands() override { end("the program has ended"); }

  void start(const ProgramCommand& command, ControlCommand request, ControlReply reply) {
    std::lock_guard lock(mutex_);
    if (ended_) return reply.error(*ended_);
    threads_.emplace_back([this, &command, request = std::move(request), reply] {
      try {
        reply.send(command.run(request, *this));
      } catch (const std::exception& e) {
        reply.error(e.what());
      }
      Request finished;
      finished.reason = Reason::Control;
      finished.command_finished = true;
      queue_.push(std::move(finished));
    });
  }

  // The program runs: commands waiting for it go on.
  void running(Program& program) {
    {
      std::lock_guard lock(mutex_);
      program_ = &program;
    }
    cv_.notify_all();
  }

  Program& program() override {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return program_ || ended_; });
    if (ended_) throw Error(*ended_);
    return *program_;
  }

  bool stop_and(const std::function<bool(Program&)>& at_stop) override {
    program(); // the program runs (or this throws)
    Request r;
    r.reason = Reason::Control;
    r.at_stop = at_stop;
    r.at_stop_done = std::make_shared<std::promise<bool>>();
    auto done = r.at_stop_done->get_future();
    queue_.push(std::move(r)); // answered, even once the queue is closed
    return done.get();
  }

  void on_end(std::function<void()> cancel) override {
    std::unique_lock lock(mutex_);
    if (ended_) {
      lock.unlock();
      return cancel();
    }
    cancels_.push_back(std::move(cancel));
  }

  // No program any more: the commands are cancelled and awaited (the
  // queue, closed first, answers their stop requests).
  void end(const std::string& why) {
    std::vector<std::function<void()>> cancels;
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      if (!ended_) ended_ = why;
      program_ = nullptr;
      cancels.swap(cancels_);
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (auto& cancel : cancels) cancel();
    for (std::thread& t : threads) t.join();
  }

private:
  RequestQueue& queue_;
  std::mutex mutex_;
  std::condition_variable cv_;
  Program* program_ = nullptr;
  std::optional<std::string> ended_;
  std::vector<std::function<void()>> cancels_;
  std::vector<std::thread> threads_;
};

// Runs the commands' work at this stop; true when the program has moved
// (the run ends).
bool run_at_stop_requests(Program& program, std::vector<Request>& requests) {
  bool moved = false;
  for (Request& r : requests) {
    if (!r.at_stop) continue;
    if (moved) {
      r.refuse("the program has moved to another host");
      continue;
    }
    try {
      moved = r.at_stop(program);
      r.at_stop_done->set_value(moved);
    } catch (...) {
      r.at_stop_done->set_exception(std::current_exception());
    }
  }
  return moved;
}

} // namespace

// --- The supervisor ----------------------------------------------------------------

struct Supervisor::State {
  CheckpointPolicy policy;
  std::string engine;
  RequestQueue queue;
  Status status;
  // --incremental, while the program runs (its logs refer to the program's
  // memories); before the writer, whose last write reports to it.
  std::unique_ptr<IncrementalChain> chain;
  Writer writer{status};
  std::optional<PeriodicTimer> timer;
  Commands commands{queue};
  std::optional<ControlServer> control;
  bool ran = false;
  bool finished = false;

  State(CheckpointPolicy p, std::string e) : policy(std::move(p)), engine(std::move(e)) {
    install_signal_triggers(policy.continue_signals, policy.checkpoint_on_sigterm);
    if (policy.every) timer.emplace(*policy.every, queue);
    if (!policy.control_socket.empty()) control.emplace(policy.control_socket, control_commands());
  }

  // The control socket's commands; their handlers run on its thread.
  std::vector<ControlCommandSpec> control_commands() {
    ControlCommandSpec checkpoint{"checkpoint", {"--stop"}, true, {}};
    checkpoint.handle = [this](const ControlCommand& c, ControlReply reply) {
      if (c.argument.empty() && policy.path.empty())
        return reply.error("no checkpoint path: give one (tern checkpoint -o PATH) or start the "
                           "program with --checkpoint-to PATH");
      queue.push(Request{Reason::Control, c.argument, c.has_flag("--stop"), std::move(reply)});
    };
    ControlCommandSpec status_command{"status", {}, false, {}};
    status_command.handle = [this](const ControlCommand&, ControlReply reply) {
      reply.send(status_line());
    };
    std::vector<ControlCommandSpec> specs = {checkpoint, status_command};
    for (const ProgramCommand& command : policy.commands) {
      ControlCommandSpec spec{command.name, command.flags, true, {}};
      spec.handle = [this, &command](const ControlCommand& c, ControlReply reply) {
        commands.start(command, c, std::move(reply));
      };
      specs.push_back(std::move(spec));
    }
    return specs;
  }

  // `running` (or `starting` before the program runs), the engine, the
  // checkpoints written, the requests waiting for the next stable point;
  // then the last snapshot and the last error (free text, so last).
  std::string status_line() {
    const size_t pending = queue.size() + std::popcount(pending_signals());
    std::lock_guard lock(status.mutex);
    if (status.phase == Status::Phase::Ended) return "error the program has ended";
    std::string line = fmt::format("{} engine={} checkpoints={} pending={}",
                                   status.phase == Status::Phase::Starting ? "starting" : "running",
                                   engine, status.written, pending);
    if (!status.last_path.empty()) line += " last=" + status.last_path;
    if (!status.last_error.empty()) line += " last_error=" + status.last_error;
    return line;
  }

  void start(Program& program) {
    {
      std::lock_guard lock(status.mutex);
      status.phase = Status::Phase::Running;
    }
    queue.arm(program.interrupt());
    arm_signal_triggers(program.interrupt());
    if (timer) timer->restart();
    commands.running(program);
  }

  // No more checkpoints: everything still asking is answered with
  // `error WHY`, in an order that loses no reply — queued requests, then
  // the background write's, then whatever the control socket still holds.
  void finish(const std::string& why) {
    if (finished) return;
    finished = true;
    disarm_signal_triggers();
    queue.close(why);
    commands.end(why); // their replies go before the control socket closes
    writer.wait();
    {
      std::lock_guard lock(status.mutex);
      status.phase = Status::Phase::Ended;
    }
    if (control) control->close(why);
    timer.reset();
    chain.reset(); // tracking ends with the run
  }

  // Folds signal bits, queued requests and a reached --checkpoint-at into
  // the list of checkpoints to take at this stop.
  std::vector<Request> collect_requests(Program& program, bool& guest_asked, bool& count_taken) {
    std::vector<Request> requests = queue.take();
    const uint32_t bits = take_signals();
    if (bits & kSignalCheckpoint) requests.push_back({Reason::Signal, "", false, std::nullopt});
    if (bits & kSignalTerminate) requests.push_back({Reason::Terminate, "", true, std::nullopt});
    if (guest_asked) {
      requests.push_back({Reason::Guest, "", false, std::nullopt});
      guest_asked = false;
    }
    if (policy.at && !count_taken && program.stable_points() == *policy.at) {
      requests.push_back({Reason::Count, "", false, std::nullopt});
      count_taken = true;
    }
    if (policy.every_points && program.stable_points() > 0 &&
        program.stable_points() % *policy.every_points == 0)
      requests.push_back({Reason::EveryPoints, "", false, std::nullopt});
    return requests;
  }

  // Counting mode stops the program at the next stable point that
  // --checkpoint-at, --pause-at or --checkpoint-every-points asks for.
  void arm_count_triggers(Program& program, bool count_taken) {
    const uint64_t now = program.stable_points();
    std::optional<uint64_t> next;
    if (policy.at && !count_taken && *policy.at > now) next = *policy.at;
    if (policy.pause_at && *policy.pause_at > now)
      next = next ? std::min(*next, *policy.pause_at) : *policy.pause_at;
    if (policy.every_points) {
      const uint64_t periodic = (now / *policy.every_points + 1) * *policy.every_points;
      next = next ? std::min(*next, periodic) : periodic;
    }
    if (next) program.stop_at_stable_point(*next);
  }

  // Writes `snap` as the next link of the incremental chain; the outcome
  // goes to `done` (on the writer's thread when in the background) and,
  // when written `now`, is returned too.
  std::optional<Writer::Outcome> write_link(Program& program, snapshot::Snapshot snap, bool now,
                                            const Writer::Done& done) {
    writer.wait(); // the previous link's outcome decides this one's parent
    const IncrementalChain::Link link = chain->next(snap);
    if (policy.verbose) {
      if (link.parent.empty())
        fmt::print(stderr, "tern: {} is self-contained (the chain starts)\n", link.path);
      else
        fmt::print(stderr, "tern: {} is incremental: {} of {} pages written since {}\n", link.path,
                   link.carried, link.pages, link.parent);
    }
    const Writer::Then then = [link] { util::link_file_atomic(link.path, link.head); };
    auto finished = [this, link, done](const Writer::Outcome& out) {
      chain->finished(link, out.written);
      done(out);
    };
    snapshot::WriteOptions options = policy.write;
    options.carried_pages = link.carried_pages;
    if (now) {
      Writer::Outcome out = writer.write_now(link.path, snap, options, then);
      finished(out);
      return out;
    }
    program.detach_shared_memory(snap, link.carried_pages);
    writer.write_in_background(link.path, snap, options, finished, then);
    return std::nullopt;
  }

  // Takes one capture for every request of this stop, writes it once to
  // each destination; returns whether the program stops now.
  bool take_checkpoints(Program& program, std::vector<Request>& requests,
                        SupervisedOutcome& result) {
    snapshot::Snapshot snap = program.capture(policy.capture, policy.save);
    bool stop = false;
    bool guest_written = false;
    bool timer_waits = false; // a periodic request no write will restart the timer for
    std::vector<std::pair<std::string, std::vector<Request*>>> destinations;
    for (Request& r : requests) {
      const std::string path = r.path.empty() ? policy.path : r.path;
      if (path.empty()) {
        if (r.reply) r.reply->error("no checkpoint path (tern run --checkpoint-to)");
        timer_waits = timer_waits || r.reason == Reason::Timer;
        continue;
      }
      auto it = std::find_if(destinations.begin(), destinations.end(),
                             [&](const auto& d) { return d.first == path; });
      if (it == destinations.end()) it = destinations.insert(destinations.end(), {path, {}});
      it->second.push_back(&r);
      stop = stop || r.stop || policy.stop_after_checkpoint;
    }
    for (auto& [path, reqs] : destinations) {
      std::vector<ControlReply> replies;
      bool from_guest = false;
      bool periodic = false;
      for (Request* r : reqs) {
        if (r->reply) replies.push_back(*r->reply);
        from_guest = from_guest || r->reason == Reason::Guest;
        periodic = periodic || r->reason == Reason::Timer;
        if (policy.verbose)
          fmt::print(stderr, "tern: checkpoint ({}) at stable point {} to {}\n",
                     reason_name(r->reason), program.stable_points(), path);
      }
      if (chain && path == policy.path) {
        const std::optional<Writer::Outcome> out =
            write_link(program, snap, stop, [this, path, replies, periodic](const auto& o) {
              for (const auto& reply : replies) reply.send(reply_for(path, o.error));
              if (periodic && timer) timer->restart();
            });
        const bool failed = out && !out->error.empty();
        if (failed)
          stop = false; // never lose the program
        else
          result.last_checkpoint = path;
        guest_written = guest_written || (from_guest && !failed);
        continue;
      }
      if (stop) { // synchronous: the program ends only once the snapshot is safe
        const std::string error = writer.write_now(path, snap, policy.write).error;
        for (const auto& reply : replies) reply.send(reply_for(path, error));
        if (!error.empty())
          stop = false; // never lose the program
        else
          result.last_checkpoint = path;
        guest_written = guest_written || (from_guest && error.empty());
        timer_waits = timer_waits || periodic;
      } else {
        program.detach_shared_memory(snap);
        writer.write_in_background(
            path, snap, policy.write,
            [this, path, replies = std::move(replies), periodic](const Writer::Outcome& out) {
              for (const auto& reply : replies) reply.send(reply_for(path, out.error));
              if (periodic && timer) timer->restart();
            });
        result.last_checkpoint = path;
        guest_written = guest_written || from_guest;
      }
    }
    if (timer_waits && timer) timer->restart();
    program.finish_guest_checkpoint(guest_written);
    return stop;
  }
};

namespace {

// --verbose-checkpoints: the pause, from the main thread's stop (the
// spawned threads' stop included) until the program continues.
void print_pause(const Program& program, std::chrono::duration<double, std::milli> after_stop) {
  const Program::WorldStop world = program.last_world_stop();
  if (world.threads == 0) return fmt::print(stderr, "tern: paused {:.3f} ms\n", after_stop.count());
  fmt::print(stderr, "tern: paused {:.3f} ms ({:.3f} ms stopping {} spawned threads)\n",
             after_stop.count() + world.ms, world.ms, world.threads);
}

} // namespace

Supervisor::Supervisor(CheckpointPolicy policy, std::string engine)
    : state_(std::make_unique<State>(std::move(policy), std::move(engine))) {}

Supervisor::~Supervisor() {
  state_->finish(state_->ran ? "the program has ended" : "the program did not start");
}

SupervisedOutcome Supervisor::run(Program& program) {
  State& s = *state_;
  if (s.ran) throw InternalError("a supervisor runs one program");
  const CheckpointPolicy& policy = s.policy;
  if (policy.at && *policy.at <= program.stable_points())
    throw Error(fmt::format("--checkpoint-at {}: the program was restored at stable point {}; "
                            "N must be greater to checkpoint it again",
                            *policy.at, program.stable_points()));
  s.ran = true;
  if (policy.incremental) {
    s.chain = std::make_unique<IncrementalChain>(program, policy.path);
    if (policy.verbose)
      fmt::print(stderr, "tern: incremental checkpoints to {}.N; pages written are tracked by {}\n",
                 policy.path, s.chain->tracking());
  }
  s.arm_count_triggers(program, false);
  bool guest_asked = false;
  bool count_taken = false;
  bool pause_taken = false;
  // Whether a control request has been handled: --pause-at holds the
  // program only until one has. One handled before the pause point (a
  // migration that failed while the program was on its way there) ends
  // the hold before it begins, or a failed migration would leave the
  // program held for ever instead of running on.
  bool control_handled = false;
  program.on_guest_checkpoint([&] {
    if (policy.path.empty()) return false;
    guest_asked = true;
    return true;
  });

  SupervisedOutcome result;
  std::string why = "the program has ended";
  struct Finish {
    State& s;
    const std::string& why;
    ~Finish() { s.finish(why); }
  } finish{s, why};
  s.start(program);
  for (;;) {
    result.exec = program.run();
    if (result.exec.kind != runtime::ExecOutcome::Kind::Suspended) break;
    const auto paused = Clock::now();
    // Cleared first: a request that comes after this is either collected
    // now or raises the flag again for the next stable point.
    program.interrupt().clear();
    std::vector<Request> requests = s.collect_requests(program, guest_asked, count_taken);
    if (policy.every_points) s.arm_count_triggers(program, count_taken);
    if (policy.pause_at && !pause_taken && program.stable_points() == *policy.pause_at) {
      pause_taken = true;
      // Held until a control request: a checkpoint, a command's stop, or a
      // command that finished without stopping the program.
      if (!control_handled)
        while (requests.empty()) requests = s.queue.wait_take();
    }
    control_handled = control_handled ||
                      std::any_of(requests.begin(), requests.end(),
                                  [](const Request& r) { return r.reason == Reason::Control; });
    std::erase_if(requests, [](const Request& r) { return r.command_finished; });
    if (run_at_stop_requests(program, requests)) {
      for (Request& r : requests)
        if (!r.at_stop) r.refuse("the program has moved to another host");
      result.stopped = result.moved = true;
      why = "the program has moved to another host";
      break;
    }
    std::erase_if(requests, [](const Request& r) { return bool(r.at_stop); });
    if (requests.empty()) continue;
    if (s.take_checkpoints(program, requests, result)) {
      result.stopped = true;
      why =
          fmt::format("the program has stopped after its checkpoint to {}", result.last_checkpoint);
      break;
    }
    if (policy.verbose)
      print_pause(program, std::chrono::duration<double, std::milli>(Clock::now() - paused));
  }
  s.finish(why);
  {
    std::lock_guard lock(s.status.mutex);
    result.checkpoints_written = s.status.written;
    result.checkpoints_failed = s.status.failed;
  }
  if (policy.verbose)
    fmt::print(stderr, "tern: {} checkpoint{} written, {} failed\n", result.checkpoints_written,
               result.checkpoints_written == 1 ? "" : "s", result.checkpoints_failed);
  return result;
}

} // namespace tern::program
