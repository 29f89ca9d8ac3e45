// libFuzzer target: hostile snapshots through the WASI restore, with its
// sandbox watched (docs/security.md). A structured mutator decodes each
// input's WASI section, changes its records the way a forger would (host
// paths of preopens, stream records redirected anywhere, paths that climb
// out or go through planted links, socket records, bundled files with any
// path and mode) and writes the snapshot back with every checksum valid, so
// inputs reach restore_state instead of dying at the reader. Each input is
// restored with one directory granted (--dir ROOT/granted::GUEST, GUEST
// the first preopen's name) and nothing else; afterwards no file of the
// sentinel tree ROOT/sentinel, and nothing in ROOT but the granted tree,
// may have been opened, read, written, created or removed (inotify), or the
// target aborts.
//
// ROOT is /tmp/tern-fuzz-root, a private tmpfs in a mount namespace of the
// fuzzer's own (and a network namespace, so re-created sockets touch
// nothing), so that the paths in saved inputs mean the same in every run;
// where namespaces are not allowed, a fresh directory of this process.
#include "snapshot/format.h"
#include "tern/error.h"
#include "util/file.h"
#include "wasi/state.h"
#include "wasi/state_records.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sched.h>
#include <string>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>
#include <zstd.h>

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using namespace tern;
using wasi::state::Origin;
using wasi::state::SavedFd;
using wasi::state::SavedState;
namespace fs = std::filesystem;

// --- the sandbox and its watch ------------------------------------------------------

std::string g_root = "/tmp/tern-fuzz-root";

std::string granted() {
  return g_root + "/granted";
}
std::string sentinel() {
  return g_root + "/sentinel";
}

void write_text(const std::string& path, const char* text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) std::abort();
  std::fputs(text, f);
  std::fclose(f);
}

// A private tmpfs at g_root, in mount and network namespaces of our own.
bool private_root() {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) {
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0) return false;
    // Map ourselves, so that files keep their owner.
    const std::string uid_map = std::to_string(uid) + " " + std::to_string(uid) + " 1";
    const std::string gid_map = std::to_string(gid) + " " + std::to_string(gid) + " 1";
    write_text("/proc/self/setgroups", "deny");
    write_text("/proc/self/uid_map", uid_map.c_str());
    write_text("/proc/self/gid_map", gid_map.c_str());
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  std::error_code ec;
  fs::create_directories(g_root, ec); // an empty directory outside, our tmpfs inside
  return ::mount("tmpfs", g_root.c_str(), "tmpfs", 0, "size=64m") == 0;
}

void make_tree() {
  fs::create_directories(sentinel() + "/sub");
  write_text(sentinel() + "/secret", "sentinel secret\n");
  write_text(sentinel() + "/sub/deeper", "deeper\n");
}

// The granted directory as each input finds it: files to reopen, and
// links a guest could have left (one inside, ones pointing out).
void reset_granted() {
  std::error_code ec;
  fs::remove_all(granted(), ec);
  fs::create_directories(granted() + "/sub", ec);
  write_text(granted() + "/in.txt", "0123456789");
  write_text(granted() + "/out.log", "output");
  fs::create_symlink("in.txt", granted() + "/link_in", ec);
  fs::create_symlink("../sentinel/secret", granted() + "/link_out", ec);
  fs::create_symlink(sentinel(), granted() + "/link_abs", ec);
  fs::create_directory_symlink("../sentinel", granted() + "/sub/up", ec);
}

// An inotify event's mask as the names of its bits.
std::string describe_mask(uint32_t mask) {
  static const std::pair<uint32_t, const char*> kBits[] = {{IN_ACCESS, "access"},
                                                           {IN_MODIFY, "modify"},
                                                           {IN_ATTRIB, "attrib"},
                                                           {IN_CLOSE_WRITE, "close-write"},
                                                           {IN_CLOSE_NOWRITE, "close-nowrite"},
                                                           {IN_OPEN, "open"},
                                                           {IN_MOVED_FROM, "moved-from"},
                                                           {IN_MOVED_TO, "moved-to"},
                                                           {IN_CREATE, "create"},
                                                           {IN_DELETE, "delete"},
                                                           {IN_DELETE_SELF, "delete-self"},
                                                           {IN_MOVE_SELF, "move-self"},
                                                           {IN_ISDIR, "dir"}};
  std::string out;
  for (const auto& [bit, name] : kBits)
    if (mask & bit) out += (out.empty() ? "" : "|") + std::string(name);
  return out;
}

class Watch {
public:
  void start() {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) std::abort();
    for (const std::string& dir : {g_root, sentinel(), sentinel() + "/sub"})
      if (int wd = ::inotify_add_watch(fd_, dir.c_str(), IN_ALL_EVENTS); wd >= 0) dirs_[wd] = dir;
  }

  // What happened in the watched tree since the last call, but for the
  // granted directory's own entry in ROOT.
  std::vector<std::string> events() {
    std::vector<std::string> out;
    alignas(inotify_event) char buf[8192];
    for (;;) {
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return out;
      for (char* p = buf; p < buf + n;) {
        const auto* e = reinterpret_cast<const inotify_event*>(p);
        const std::string name = e->len ? e->name : "";
        const std::string& dir = dirs_[e->wd];
        if (!(dir == g_root && name == "granted") && !(e->mask & IN_IGNORED))
          out.push_back(dir + "/" + name + ": " + describe_mask(e->mask));
        p += sizeof(inotify_event) + e->len;
      }
    }
  }

private:
  int fd_ = -1;
  std::map<int, std::string> dirs_;
};

Watch g_watch;

// --- the mutator ---------------------------------------------------------------------

// Host paths and guest paths a forger would try.
std::vector<std::string> host_paths() {
  return {sentinel(),
          g_root,
          "/",
          granted(),
          granted() + "/../sentinel",
          sentinel() + "/secret",
          sentinel() + "/sub",
          "",
          "relative",
          "/proc/self/cwd",
          "/nonexistent"};
}

std::vector<std::string> guest_paths() {
  return {"in.txt",
          "out.log",
          "link_in",
          "link_out",
          "link_abs/secret",
          "sub/up/secret",
          "../sentinel/secret",
          "sub/../../sentinel/secret",
          "/etc/passwd",
          sentinel() + "/secret",
          "sub",
          ".",
          "",
          "new.txt",
          "sub/new.txt",
          "link_out/x",
          std::string(300, 'a'),
          "tmp/tern-fuzz-root/sentinel/secret",
          "tmp/tern-fuzz-root/sentinel/sub/deeper"};
}

template <typename T>
const T& pick(std::mt19937& rng, const std::vector<T>& v) {
  return v[rng() % v.size()];
}

wasi::SocketAddress random_address(std::mt19937& rng) {
  wasi::SocketAddress a;
  a.family = (rng() % 3 == 0) ? 6 : 4;
  if (a.family == 4) {
    static const uint8_t kIps[][4] = {{127, 0, 0, 1}, {0, 0, 0, 0}, {10, 1, 2, 3}};
    const auto& ip = kIps[rng() % 3];
    std::copy(ip, ip + 4, a.ip.begin());
  } else if (rng() % 2) {
    a.ip[15] = 1;
  }
  a.port = static_cast<uint16_t>(rng() % 3 == 0 ? 0 : 1024 + rng() % 60000);
  return a;
}

// A record of any kind, with fields a forger would choose.
SavedFd random_fd(std::mt19937& rng, const SavedState& s) {
  SavedFd f;
  f.fd = static_cast<uint32_t>(rng() % 12);
  f.rights_base = wasi::right::regular_file | wasi::right::directory;
  f.rights_inheriting = f.rights_base;
  switch (rng() % 4) {
  case 0:
    f.origin = Origin::Stdio;
    f.kind = rng() % 2 ? wasi::FdKind::File : wasi::FdKind::CharDevice;
    f.stream = static_cast<uint8_t>(rng() % 3);
    f.redirected = rng() % 4 != 0;
    f.path = rng() % 2 ? pick(rng, host_paths()) : sentinel() + "/secret";
    f.position = rng() % 16;
    break;
  case 1:
    if (s.preopens.empty()) return random_fd(rng, s);
    f.origin = Origin::Preopen;
    f.kind = wasi::FdKind::Directory;
    f.preopen = static_cast<uint32_t>(rng() % s.preopens.size());
    break;
  case 2: {
    if (s.preopens.empty()) return random_fd(rng, s);
    f.origin = Origin::Path;
    static const wasi::FdKind kKinds[] = {wasi::FdKind::File, wasi::FdKind::Directory,
                                          wasi::FdKind::Fifo, wasi::FdKind::CharDevice};
    f.kind = kKinds[rng() % 4];
    f.preopen = static_cast<uint32_t>(rng() % s.preopens.size());
    f.path = pick(rng, guest_paths());
    f.oflags = static_cast<uint16_t>(rng() % 16);
    f.lookupflags = rng() % 2;
    f.fdflags = static_cast<uint16_t>(rng() % 32);
    // Sometimes the identity of a real file, so that the check passes.
    struct stat st;
    if (rng() % 2 && ::stat((granted() + "/" + f.path).c_str(), &st) == 0) {
      f.size = static_cast<uint64_t>(st.st_size);
      f.mtime_ns = wasi::FileIdentity::of(st).mtime_ns;
    }
    break;
  }
  default: {
    f.origin = Origin::Socket;
    static const wasi::FdKind kKinds[] = {wasi::FdKind::TcpListener, wasi::FdKind::TcpStream,
                                          wasi::FdKind::TcpSocket, wasi::FdKind::UdpSocket};
    f.kind = kKinds[rng() % 4];
    f.socket.local = random_address(rng);
    f.socket.family = f.socket.local.family;
    if (rng() % 2) f.socket.peer = random_address(rng);
    f.socket.backlog = static_cast<int>(rng() % 64);
    if (rng() % 3 == 0) f.socket.options.recv_timeout_us = rng() % 2 ? INT64_MAX : 1;
    break;
  }
  }
  return f;
}

wasi::Preopen& pick_preopen(std::mt19937& rng, SavedState& s) {
  return s.preopens[rng() % s.preopens.size()];
}

std::vector<uint8_t> zstd_of(const std::string& text) {
  std::vector<uint8_t> out(ZSTD_compressBound(text.size()));
  const size_t n = ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 1);
  if (ZSTD_isError(n)) return {};
  out.resize(n);
  return out;
}

void mutate_state(std::mt19937& rng, SavedState& s) {
  for (int edits = 1 + rng() % 3; edits > 0; --edits) {
    switch (rng() % 9) {
    case 0: // a preopen somewhere else
      if (!s.preopens.empty()) pick_preopen(rng, s).host_path = pick(rng, host_paths());
      break;
    case 1: // another preopen, which no --dir grants
      s.preopens.push_back({pick(rng, host_paths()), rng() % 2 ? "/evil" : "/data"});
      break;
    case 2: // a record changed or added
    case 3:
      s.fds.push_back(random_fd(rng, s));
      break;
    case 4: // a record's path
      if (!s.fds.empty()) s.fds[rng() % s.fds.size()].path = pick(rng, guest_paths());
      break;
    case 5: // a record removed
      if (!s.fds.empty()) s.fds.erase(s.fds.begin() + rng() % s.fds.size());
      break;
    case 6: { // a bundled file anywhere, with any mode
      if (s.preopens.empty()) break;
      wasi::state::BundledFile f;
      f.preopen = static_cast<uint32_t>(rng() % s.preopens.size());
      f.path = pick(rng, guest_paths());
      if (f.path.empty()) f.path = "x";
      f.mode = rng() % 07777;
      const std::string contents = "bundled";
      f.size = contents.size();
      f.zstd = zstd_of(contents);
      f.mtime_ns = static_cast<int64_t>(rng());
      s.files.push_back(std::move(f));
      break;
    }
    case 7: // arguments and environment that are not UTF-8
      s.args.push_back(std::string("\xff\xfe", 2));
      s.env.push_back(std::string("K=\xc3\x28", 4));
      break;
    default: // a preopen's guest name
      if (!s.preopens.empty()) pick_preopen(rng, s).guest_path = rng() % 2 ? "/" : "/data";
      break;
    }
  }
  // What the reader requires: increasing fd numbers, preopen indices that exist.
  std::sort(s.fds.begin(), s.fds.end(),
            [](const SavedFd& a, const SavedFd& b) { return a.fd < b.fd; });
  s.fds.erase(std::unique(s.fds.begin(), s.fds.end(),
                          [](const SavedFd& a, const SavedFd& b) { return a.fd == b.fd; }),
              s.fds.end());
}

// The input's snapshot and its WASI state, if it has exactly one such
// section that decodes.
struct Decoded {
  snapshot::Snapshot snapshot;
  size_t wasi = 0; // index in snapshot.extensions
  SavedState state;
};

std::optional<Decoded> decode(const uint8_t* data, size_t size) {
  try {
    util::SpanSource source({data, size});
    Decoded d{snapshot::read_snapshot(source), 0, {}};
    for (size_t i = 0; i < d.snapshot.extensions.size(); ++i)
      if (d.snapshot.extensions[i].tag == wasi::kStateTag) {
        d.wasi = i;
        d.state = wasi::state::decode(d.snapshot.extensions[i].payload);
        return d;
      }
  } catch (const Error&) {
  }
  return std::nullopt;
}

size_t encode(Decoded& d, uint8_t* data, size_t max_size) {
  try {
    d.snapshot.extensions[d.wasi].payload = wasi::state::encode(d.state);
    util::VectorSink sink;
    snapshot::write_snapshot(d.snapshot, sink);
    if (sink.bytes().size() > max_size) return 0;
    std::memcpy(data, sink.bytes().data(), sink.bytes().size());
    return sink.bytes().size();
  } catch (const Error&) {
    return 0;
  }
}

// --- one input ---------------------------------------------------------------------------

void restore(const snapshot::ExtensionSection& section, const SavedState& s, bool walk) {
  wasi::RestoreOptions options;
  if (!s.preopens.empty()) options.dirs = {{granted(), s.preopens[0].guest_path}};
  options.resolve_mode = walk ? wasi::ResolveMode::Walk : wasi::ResolveMode::Openat2;
  options.allow_changed_files = walk;
  try {
    auto ctx = wasi::restore_state(section, options);
  } catch (const Error&) {
    // Refused: the expected outcome for most hostile inputs.
  }
}

void run(const uint8_t* data, size_t size) {
  std::optional<Decoded> d = decode(data, size);
  if (!d) return;
  reset_granted();
  g_watch.events(); // our own resetting
  const snapshot::ExtensionSection& section = d->snapshot.extensions[d->wasi];
  restore(section, d->state, size % 2 == 0);
  // What tern inspect shows must render too.
  try {
    wasi::describe_state(section);
    wasi::describe_state_json(section);
  } catch (const Error&) {
  }
  const std::vector<std::string> events = g_watch.events();
  if (!events.empty()) {
    std::fprintf(stderr, "restore_fuzzer: the restore touched what it was not granted:\n");
    for (const std::string& e : events) std::fprintf(stderr, "  %s\n", e.c_str());
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tern::snapshot::accept_wrong_checksums_for_fuzzing();
  if (!private_root()) {
    // No namespaces here: a directory of this process (saved inputs then
    // name paths that mean nothing in another run).
    g_root = fs::temp_directory_path().string() + "/tern-fuzz-root-" + std::to_string(::getpid());
    std::fprintf(stderr, "restore_fuzzer: no private mount namespace; using %s\n", g_root.c_str());
    // A private tmpfs vanishes with the process; this directory must be removed.
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(g_root, ec);
    });
  }
  make_tree();
  reset_granted();
  g_watch.start();
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937 rng(seed);
  std::optional<Decoded> d = decode(data, size);
  if (d && rng() % 8 != 0) {
    if (rng() % 4 == 0) {
      // The WASI payload's bytes, framed with valid checksums.
      auto& payload = d->snapshot.extensions[d->wasi].payload;
      const size_t used = payload.size();
      payload.resize(used * 2 + 64);
      payload.resize(LLVMFuzzerMutate(payload.data(), used, payload.size()));
      util::VectorSink sink;
      try {
        snapshot::write_snapshot(d->snapshot, sink);
      } catch (const Error&) {
        return LLVMFuzzerMutate(data, size, max_size);
      }
      if (sink.bytes().size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
      std::memcpy(data, sink.bytes().data(), sink.bytes().size());
      return sink.bytes().size();
    }
    mutate_state(rng, d->state);
    if (size_t n = encode(*d, data, max_size)) return n;
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  return 0;
}
