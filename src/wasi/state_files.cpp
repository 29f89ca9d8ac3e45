#include "wasi/state_files.h"

#include "tern/error.h"
#include "util/file.h"
#include "wasi/calls.h"
#include "wasi/posix_errno.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

namespace tern::wasi::state {
namespace {

constexpr size_t kIoChunk = size_t(1) << 20;
constexpr int kZstdLevel = 3;

struct CompressContext {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ~CompressContext() { ZSTD_freeCCtx(cctx); }
};

struct DecompressContext {
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  ~DecompressContext() { ZSTD_freeDCtx(dctx); }
};

// Appends the zstd compression of everything readable from `fd` to `out`;
// returns the number of bytes read.
uint64_t compress_from(int fd, std::vector<uint8_t>& out, const std::string& name) {
  CompressContext z;
  if (!z.cctx) throw Error("out of memory for zstd");
  ZSTD_CCtx_setParameter(z.cctx, ZSTD_c_compressionLevel, kZstdLevel);
  std::vector<uint8_t> in(kIoChunk);
  uint64_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, in.data(), in.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(fmt::format("{}: cannot read it to bundle: {}", name, std::strerror(errno)));
    total += static_cast<uint64_t>(n);
    const ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
    ZSTD_inBuffer input{in.data(), static_cast<size_t>(n), 0};
    size_t remaining;
    do {
      const size_t used = out.size();
      out.resize(used + ZSTD_CStreamOutSize());
      ZSTD_outBuffer output{out.data() + used, ZSTD_CStreamOutSize(), 0};
      remaining = ZSTD_compressStream2(z.cctx, &output, &input, mode);
      if (ZSTD_isError(remaining))
        throw Error(fmt::format("{}: zstd: {}", name, ZSTD_getErrorName(remaining)));
      out.resize(used + output.pos);
    } while (mode == ZSTD_e_end ? remaining != 0 : input.pos < input.size);
    if (n == 0) return total;
  }
}

// Decompresses `file` into `sink`, refusing data that is not exactly
// `file.size` bytes (without ever holding more than a chunk of it).
void decompress_to(const BundledFile& file, util::ByteSink& sink) {
  if (file.zstd.empty()) {
    if (file.size != 0) throw Error("no contents");
    return;
  }
  DecompressContext z;
  if (!z.dctx) throw Error("out of memory for zstd");
  std::vector<uint8_t> chunk(ZSTD_DStreamOutSize());
  ZSTD_inBuffer input{file.zstd.data(), file.zstd.size(), 0};
  uint64_t total = 0;
  size_t pending = 1; // 0 once a frame is complete
  while (input.pos < input.size || pending != 0) {
    ZSTD_outBuffer output{chunk.data(), chunk.size(), 0};
    const size_t before = input.pos;
    pending = ZSTD_decompressStream(z.dctx, &output, &input);
    if (ZSTD_isError(pending)) throw Error(fmt::format("zstd: {}", ZSTD_getErrorName(pending)));
    total += output.pos;
    if (total > file.size) throw Error(fmt::format("more than its {} bytes", file.size));
    sink.write({chunk.data(), output.pos});
    // No input taken, no output made: the data ends inside a frame.
    if (output.pos == 0 && input.pos == before && pending != 0) throw Error("truncated zstd data");
  }
  if (total != file.size) throw Error(fmt::format("{} bytes instead of {}", total, file.size));
}

[[noreturn]] void fail_reopen(const SavedFd& saved, const RestoreRoot& root, std::string_view why) {
  throw Error(fmt::format("fd {} ({}): {} (host path {})", saved.fd,
                          guest_name_of(root.guest_path, saved.path), why,
                          root.host_path_of(saved.path)));
}

void check_identity(const SavedFd& saved, const RestoreRoot& root, const struct stat& st) {
  const FileIdentity now = FileIdentity::of(st);
  if (now.size == saved.size && now.mtime_ns == saved.mtime_ns) return;
  fail_reopen(saved, root,
              fmt::format("changed since the checkpoint: size {} then, {} now; mtime {} then, {} "
                          "now",
                          saved.size, now.size, mtime_text(saved.mtime_ns),
                          mtime_text(now.mtime_ns)));
}

} // namespace

void make_blocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
}

std::string RestoreRoot::host_path_of(const std::string& path) const {
  if (path.empty()) return host_path;
  return host_path.ends_with('/') ? host_path + path : host_path + "/" + path;
}

BundledFile bundle_file(const FdEntry& entry, uint32_t fd, const std::string& name) {
  const std::string what = fmt::format("fd {} ({})", fd, name);
  // The guest's fd may be write-only: read the same file through /proc,
  // which reaches it even if it was renamed or unlinked.
  util::UniqueFd reader(
      ::open(fmt::format("/proc/self/fd/{}", entry.host.get()).c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (!reader || ::fstat(reader.get(), &st) != 0)
    throw Error(fmt::format("{}: cannot read it to bundle: {}", what, std::strerror(errno)));
  BundledFile file;
  file.preopen = *entry.preopen;
  file.path = entry.guest_path;
  file.mode = static_cast<uint32_t>(st.st_mode & 07777);
  file.mtime_ns = FileIdentity::of(st).mtime_ns;
  file.size = compress_from(reader.get(), file.zstd, what);
  return file;
}

void write_back(const BundledFile& file, const RestoreRoot& root, PathResolver& resolver) {
  const std::string name = guest_name_of(root.guest_path, file.path);
  const std::string host = root.host_path_of(file.path);
  ParentDir parent;
  if (Errno e = resolver.parent(root.fd, file.path, true, parent); e != Errno::success)
    throw Error(
        fmt::format("bundled file {}: cannot write it back to {}: {}", name, host, errno_text(e)));
  // Written through the directory resolved beneath the preopen, under a
  // name nobody can plant anything at; the mode and mtime are set on the
  // new file before it replaces the target. The snapshot chooses neither a
  // special bit nor an owner.
  util::AtomicWriteOptions options;
  options.exact_mode = static_cast<mode_t>(file.mode & 0777);
  options.mtime_ns = file.mtime_ns;
  try {
    util::write_file_atomic_at(
        parent.fd, parent.name, host, [&](util::ByteSink& sink) { decompress_to(file, sink); },
        options);
  } catch (const Error& e) {
    throw Error(
        fmt::format("bundled file {}: cannot write it back to {}: {}", name, host, e.what()));
  }
}

FdEntry reopen_path(const SavedFd& saved, const RestoreRoot& root, PathResolver& resolver,
                    bool allow_changed) {
  // The program created or truncated the file when it first opened it; a
  // restore must find what it wrote since, never create or clobber it.
  const uint16_t reopen_oflags = saved.oflags & ~(oflag::creat | oflag::excl | oflag::trunc);
  const bool follow = saved.lookupflags & lookupflag::symlink_follow;
  const int flags = host_open_flags(reopen_oflags, saved.rights_base, saved.fdflags, follow);
  util::UniqueFd host;
  const std::string path = saved.path.empty() ? "." : saved.path;
  // Opened without waiting (a FIFO's open waits for its other end, and the
  // file may have become one) and checked before it is used.
  if (Errno e = resolver.open(root.fd, path, flags | kNoWait | O_CLOEXEC, 0, host);
      e != Errno::success)
    fail_reopen(saved, root,
                e == Errno::noent ? "missing on restore" : "cannot reopen it: " + errno_text(e));
  struct stat st;
  if (::fstat(host.get(), &st) != 0) fail_reopen(saved, root, std::strerror(errno));
  const FdKind kind = kind_of(host.get(), st);
  if (kind != saved.kind)
    fail_reopen(saved, root,
                fmt::format("was a {}, is now a {}", to_string(saved.kind), to_string(kind)));
  if (!(flags & O_NONBLOCK)) make_blocking(host.get());
  if (kind == FdKind::File) {
    if (!allow_changed) check_identity(saved, root, st);
    if (::lseek(host.get(), static_cast<off_t>(saved.position), SEEK_SET) < 0)
      fail_reopen(saved, root,
                  fmt::format("cannot seek to {}: {}", saved.position, std::strerror(errno)));
  }
  FdEntry entry;
  entry.kind = kind;
  entry.host = std::move(host);
  entry.guest_path = saved.path;
  entry.preopen = saved.preopen;
  entry.oflags = saved.oflags;
  entry.lookupflags = saved.lookupflags;
  entry.fdflags = saved.fdflags;
  entry.rights_base = saved.rights_base;
  entry.rights_inheriting = saved.rights_inheriting;
  entry.identity = FileIdentity::of(st);
  if (saved.listing) entry.listing = std::make_unique<DirListing>(*saved.listing);
  return entry;
}

} // namespace tern::wasi::state
