// Forges snapshots for the attack tests (attacks.py): reads a snapshot tern
// wrote, changes records of its WASI section the way a hostile author
// would, and writes it back with every checksum valid, so that only the
// restore's own rules stand between the forgery and the host.
//
//   forge_snapshot IN OUT EDIT...
//
// Edits (applied in order):
//   add-preopen GUEST HOST        a preopen the user never gave
//   add-file FD PREOPEN PATH      a file opened for reading beneath preopen
//                                 PREOPEN (its size and mtime taken from
//                                 the host file, so that it passes the
//                                 identity check)
//   redirect FD STREAM PATH       a standard stream record (0 stdin, 1
//                                 stdout, 2 stderr) at fd FD, redirected to
//                                 the host file PATH
//   add-socket FD KIND LOCAL [PEER]  a socket record: KIND tcp-listener,
//                                 tcp-socket or udp-socket, addresses as
//                                 IPv4 ADDR:PORT
//   bundle-mode MODE              every bundled file's mode (octal)
//   duplicate-wasi                the WASI section twice
#include "snapshot/format.h"
#include "tern/error.h"
#include "util/file.h"
#include "wasi/state.h"
#include "wasi/state_records.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <vector>
#include <xxhash.h>

namespace {

using namespace tern;
using wasi::state::Origin;
using wasi::state::SavedFd;
using wasi::state::SavedState;

wasi::SocketAddress address(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) throw Error("address " + text + ": expected ADDR:PORT");
  wasi::SocketAddress a;
  a.family = 4;
  if (::inet_pton(AF_INET, text.substr(0, colon).c_str(), a.ip.data()) != 1)
    throw Error("address " + text + ": not IPv4");
  a.port = static_cast<uint16_t>(std::stoul(text.substr(colon + 1)));
  return a;
}

wasi::FdKind socket_kind(const std::string& name) {
  if (name == "tcp-listener") return wasi::FdKind::TcpListener;
  if (name == "tcp-socket") return wasi::FdKind::TcpSocket;
  if (name == "udp-socket") return wasi::FdKind::UdpSocket;
  throw Error("unknown socket kind " + name);
}

// Puts `f` in the fd list, replacing a record with its number.
void put_fd(SavedState& s, SavedFd f) {
  std::erase_if(s.fds, [&](const SavedFd& other) { return other.fd == f.fd; });
  s.fds.push_back(std::move(f));
  std::sort(s.fds.begin(), s.fds.end(),
            [](const SavedFd& a, const SavedFd& b) { return a.fd < b.fd; });
}

SavedFd file_record(const SavedState& s, uint32_t fd, uint32_t preopen, const std::string& path) {
  if (preopen >= s.preopens.size()) throw Error("no preopen " + std::to_string(preopen));
  const std::string host = s.preopens[preopen].host_path + "/" + path;
  struct stat st;
  if (::stat(host.c_str(), &st) != 0) throw Error("cannot stat " + host);
  SavedFd f;
  f.fd = fd;
  f.kind = wasi::FdKind::File;
  f.origin = Origin::Path;
  f.preopen = preopen;
  f.path = path;
  f.rights_base = wasi::right::fd_read | wasi::right::fd_seek | wasi::right::fd_tell;
  f.size = static_cast<uint64_t>(st.st_size);
  f.mtime_ns = wasi::FileIdentity::of(st).mtime_ns;
  return f;
}

SavedFd stream_record(uint32_t fd, uint8_t stream, const std::string& path) {
  SavedFd f;
  f.fd = fd;
  f.kind = wasi::FdKind::File;
  f.origin = Origin::Stdio;
  f.stream = stream;
  f.redirected = true;
  f.path = path;
  f.rights_base = stream == 0 ? wasi::right::fd_read : wasi::right::fd_write;
  return f;
}

SavedFd socket_record(uint32_t fd, wasi::FdKind kind, const std::string& local,
                      const std::string& peer) {
  SavedFd f;
  f.fd = fd;
  f.kind = kind;
  f.origin = Origin::Socket;
  f.rights_base = wasi::right::fd_read | wasi::right::fd_write;
  f.socket.family = 4;
  f.socket.local = address(local);
  if (!peer.empty()) f.socket.peer = address(peer);
  if (kind == wasi::FdKind::TcpListener) f.socket.backlog = 16;
  return f;
}

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void append_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// The stream with sections tagged `from` tagged `to`, every check mended
// (docs/snapshot-format.md §3): what a forger does that tern's writer
// refuses to (a second WASI section).
std::vector<uint8_t> retag(const std::vector<uint8_t>& in, snapshot::Tag from, snapshot::Tag to) {
  std::vector<uint8_t> out(in.begin(), in.begin() + 16);
  uint32_t sections = 0;
  for (size_t pos = 16; pos + 16 <= in.size();) {
    const size_t total = 16 + size_t(get_u32(&in[pos + 8])) + 8;
    if (std::equal(in.begin() + pos, in.begin() + pos + 4, snapshot::kTailTag.begin())) {
      std::vector<uint8_t> payload;
      append_u64(payload, out.size());
      for (int i = 0; i < 4; ++i) payload.push_back(static_cast<uint8_t>(sections >> (8 * i)));
      append_u64(payload, XXH64(out.data(), out.size(), 0));
      uint8_t h[16];
      std::copy(snapshot::kTailTag.begin(), snapshot::kTailTag.end(), h);
      put_u32(h + 4, 0);
      put_u32(h + 8, static_cast<uint32_t>(payload.size()));
      put_u32(h + 12, static_cast<uint32_t>(XXH64(h, 12, 0)));
      out.insert(out.end(), h, h + 16);
      out.insert(out.end(), payload.begin(), payload.end());
      append_u64(out, XXH64(payload.data(), payload.size(), 0));
      return out;
    }
    const size_t start = out.size();
    out.insert(out.end(), in.begin() + pos, in.begin() + pos + total);
    if (std::equal(from.begin(), from.end(), out.begin() + start)) {
      std::copy(to.begin(), to.end(), out.begin() + start);
      put_u32(&out[start + 12], static_cast<uint32_t>(XXH64(&out[start], 12, 0)));
    }
    ++sections;
    pos += total;
  }
  throw Error("no TAIL section");
}

int forge(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: forge_snapshot IN OUT EDIT...\n");
    return 2;
  }
  snapshot::Snapshot snap = snapshot::read_snapshot_file(argv[1]);
  auto it = std::find_if(snap.extensions.begin(), snap.extensions.end(),
                         [](const auto& e) { return e.tag == wasi::kStateTag; });
  if (it == snap.extensions.end()) throw Error("no WASI section");
  SavedState s = wasi::state::decode(it->payload);
  bool duplicate = false;
  std::vector<std::string> args(argv + 3, argv + argc);
  auto take = [&](size_t& i) {
    if (i >= args.size()) throw Error("missing argument");
    return args[i++];
  };
  for (size_t i = 0; i < args.size();) {
    const std::string edit = take(i);
    if (edit == "add-preopen") {
      const std::string guest = take(i);
      s.preopens.push_back({take(i), guest});
    } else if (edit == "add-file") {
      const uint32_t fd = std::stoul(take(i));
      const uint32_t preopen = std::stoul(take(i));
      put_fd(s, file_record(s, fd, preopen, take(i)));
    } else if (edit == "redirect") {
      const uint32_t fd = std::stoul(take(i));
      const auto stream = static_cast<uint8_t>(std::stoul(take(i)));
      put_fd(s, stream_record(fd, stream, take(i)));
    } else if (edit == "add-socket") {
      const uint32_t fd = std::stoul(take(i));
      const wasi::FdKind kind = socket_kind(take(i));
      const std::string local = take(i);
      const std::string peer =
          i < args.size() && args[i].find(':') != std::string::npos ? take(i) : std::string();
      put_fd(s, socket_record(fd, kind, local, peer));
    } else if (edit == "bundle-mode") {
      const uint32_t mode = std::stoul(take(i), nullptr, 8);
      for (auto& f : s.files) f.mode = mode;
    } else if (edit == "duplicate-wasi") {
      duplicate = true;
    } else {
      throw Error("unknown edit " + edit);
    }
  }
  it->payload = wasi::state::encode(s);
  util::VectorSink sink;
  if (duplicate) {
    // The writer refuses two sections of a tag: a second one is written
    // under another tag, then renamed in the bytes.
    snapshot::ExtensionSection copy = *it;
    copy.tag = snapshot::make_tag("WASJ");
    snap.extensions.insert(it + 1, copy);
  }
  snapshot::write_snapshot(snap, sink);
  std::vector<uint8_t> bytes = std::move(sink.bytes());
  if (duplicate) bytes = retag(bytes, snapshot::make_tag("WASJ"), wasi::kStateTag);
  util::write_file_atomic(argv[2], bytes);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return forge(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "forge_snapshot: %s\n", e.what());
    return 1;
  }
}
