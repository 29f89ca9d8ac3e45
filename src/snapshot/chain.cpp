#include "snapshot/chain.h"

#include "snapshot/pages.h"
#include "tern/error.h"
#include "util/unique_fd.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace tern::snapshot {
namespace {

struct OpenLink {
  std::string path; // as opened, for messages
  util::UniqueFd fd;
  uint64_t size = 0;
  std::string child; // the snapshot that named it ("" for the head)
  Snapshot identity; // HOST, MODL, PRNT, WASM
};

// The directory part of `path` with its slash ("" for a bare file name).
std::string directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

std::string errno_text() {
  return std::strerror(errno);
}

// The size of the regular file open at `fd`; `what` starts the errors.
uint64_t regular_file_size(int fd, const std::string& what) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throw Error(fmt::format("{}: {}", what, errno_text()));
  if (S_ISDIR(st.st_mode)) throw Error(fmt::format("cannot read {}: is a directory", what));
  if (!S_ISREG(st.st_mode)) throw Error(fmt::format("{} is not a regular file", what));
  return static_cast<uint64_t>(st.st_size);
}

OpenLink open_head(const std::string& path) {
  OpenLink link;
  link.path = path;
  link.fd = util::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!link.fd) throw Error(fmt::format("cannot open {}: {}", path, errno_text()));
  link.size = regular_file_size(link.fd.get(), path);
  return link;
}

// The parent `ref` that `child` names, in `dir` ("" or ending in "/"): a
// plain name (the reader checked), not followed if it is a symbolic link, a
// regular file of the recorded size (opened without blocking, should it be
// a FIFO).
OpenLink open_parent(const std::string& dir, const ParentRef& ref, const std::string& child) {
  OpenLink link;
  link.path = dir + ref.name;
  link.child = child;
  link.fd =
      util::UniqueFd(::open(link.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!link.fd && errno == ELOOP)
    throw Error(fmt::format("{}: its parent snapshot {} is a symbolic link, which tern does not "
                            "follow (give the directory that holds it with --parents DIR)",
                            child, link.path));
  if (!link.fd)
    throw Error(fmt::format("{}: its parent snapshot {} is missing: cannot open {}: {}", child,
                            ref.name, link.path, errno_text()));
  link.size = regular_file_size(link.fd.get(), fmt::format("{}: its parent {}", child, link.path));
  if (link.size != ref.size)
    throw Error(fmt::format("{}: its parent snapshot {} has changed since it was written ({} "
                            "bytes, expected {})",
                            child, link.path, link.size, ref.size));
  return link;
}

// Reads a whole snapshot from the start of `link`'s file; errors start with
// its path (and say whose parent it is).
Snapshot read_link(OpenLink& link, const ReadOptions& options) {
  try {
    if (::lseek(link.fd.get(), 0, SEEK_SET) != 0)
      throw Error(fmt::format("cannot read: {}", errno_text()));
    util::FdSource source(link.fd.get(), link.path);
    Snapshot s = read_snapshot(source, options);
    uint8_t extra;
    if (s.deferred_pages) {
      s.deferred_pages->file =
          std::make_shared<util::UniqueFd>(::fcntl(link.fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!*s.deferred_pages->file) throw Error(fmt::format("cannot read: {}", errno_text()));
    } else if (!options.identity_only && source.read_some({&extra, 1}) != 0) {
      throw Error("snapshot is malformed: bytes follow the TAIL section");
    }
    return s;
  } catch (const Error& e) {
    if (link.child.empty()) throw Error(fmt::format("{}: {}", link.path, e.what()));
    throw Error(fmt::format("{}: {} (the parent of {})", link.path, e.what(), link.child));
  }
}

// Every link's identity, head first, checked against the head.
std::vector<OpenLink> open_chain(const std::string& path, const ChainOptions& chain) {
  std::vector<OpenLink> links;
  links.push_back(open_head(path));
  std::set<std::pair<dev_t, ino_t>> seen;
  ReadOptions identity;
  identity.identity_only = true;
  identity.keep_memory = false;
  for (;;) {
    OpenLink& link = links.back();
    struct stat st;
    if (::fstat(link.fd.get(), &st) == 0 && !seen.insert({st.st_dev, st.st_ino}).second)
      throw Error(
          fmt::format("{}: the chain of parents leads back to {}", links.front().path, link.path));
    link.identity = read_link(link, identity);
    const Snapshot& head = links.front().identity;
    if (link.identity.module.sha256 != head.module.sha256)
      throw Error(
          fmt::format("{}: its parent snapshot {} is of another module", link.child, link.path));
    if (!link.identity.parent) return links;
    if (links.size() == kMaxChainLength)
      throw Error(fmt::format("{}: the chain of parents is longer than {} snapshots",
                              links.front().path, kMaxChainLength));
    const std::string dir =
        chain.parents_dir.empty() ? directory_of(link.path) : chain.parents_dir + "/";
    OpenLink parent = open_parent(dir, *link.identity.parent, link.path);
    links.push_back(std::move(parent));
  }
}

ChainLink describe_link(const OpenLink& open, const Snapshot& s) {
  ChainLink link;
  link.path = open.path;
  link.parent = s.parent;
  link.bytes = s.stream_bytes;
  link.sha256 = s.stream_sha256;
  for (const MemoryImage& m : s.memories) {
    MemoryImage header = m;
    header.contents = {};
    link.memories.push_back(std::move(header));
  }
  return link;
}

} // namespace

Snapshot read_snapshot_chain(const std::string& path, const ReadOptions& options,
                             const ChainOptions& chain, std::vector<ChainLink>* links) {
  std::vector<OpenLink> open = open_chain(path, chain);
  ReadOptions head_options = options;
  // The module, from the newest link that carries it.
  if (!open.front().identity.module.embed_binary)
    for (const OpenLink& link : open)
      if (link.identity.module.embed_binary) {
        head_options.inherited_module = link.identity.module.binary;
        break;
      }

  // Each memory decoded where the head's is; pages flagged once set.
  const bool compose = options.keep_memory && open.size() > 1;
  if (compose) head_options.defer_pages = {}; // a chain's memory is composed as it is read
  std::vector<std::vector<bool>> filled;
  std::vector<std::span<uint8_t>> targets;
  std::vector<std::shared_ptr<PageBuffer>> buffers;
  if (compose) {
    head_options.filled = &filled;
    head_options.memory_target = [&](uint32_t index, const MemoryImage& header,
                                     const Snapshot& so_far) {
      std::span<uint8_t> target;
      if (options.memory_target) {
        target = options.memory_target(index, header, so_far);
      } else {
        buffers.resize(index + 1);
        buffers[index] = std::make_shared<PageBuffer>(header.pages * kPageSize);
        target = buffers[index]->bytes();
      }
      targets.resize(index + 1);
      targets[index] = target;
      filled.resize(index + 1);
      return target;
    };
  }
  Snapshot head = read_link(open.front(), head_options);
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (!buffers[i]) continue;
    head.memories[i].contents.owner = buffers[i];
    head.memories[i].private_mapping = true; // PageBuffer: private anonymous memory
  }
  if (links) links->push_back(describe_link(open.front(), head));

  for (size_t l = 1; l < open.size(); ++l) {
    OpenLink& link = open[l];
    ReadOptions parent_options;
    parent_options.keep_memory = compose;
    if (compose) {
      parent_options.filled = &filled;
      parent_options.memory_target = [&](uint32_t index, const MemoryImage& header,
                                         const Snapshot&) {
        if (index >= head.memories.size())
          throw Error(fmt::format("memory {} is not in {}", index, open.front().path));
        const MemoryImage& newest = head.memories[index];
        if (header.pages > newest.pages || header.shared != newest.shared ||
            header.max_pages != newest.max_pages)
          throw Error(fmt::format("memory {} ({} pages) does not fit {}'s ({} pages)", index,
                                  header.pages, open.front().path, newest.pages));
        return targets[index].first(header.pages * kPageSize);
      };
    }
    const Snapshot parent = read_link(link, parent_options);
    const ParentRef& expected = *open[l - 1].identity.parent;
    if (parent.stream_bytes != expected.size || parent.stream_sha256 != expected.sha256)
      throw Error(fmt::format("{}: its parent snapshot {} has changed since it was written "
                              "(sha256 {}, expected {})",
                              link.child, link.path, util::to_hex(parent.stream_sha256),
                              util::to_hex(expected.sha256)));
    if (parent.memories.size() != head.memories.size())
      throw Error(fmt::format("{}: {} memories, where {} has {} (the parent of {})", link.path,
                              parent.memories.size(), open.front().path, head.memories.size(),
                              link.child));
    if (links) links->push_back(describe_link(link, parent));
  }
  return head;
}

} // namespace tern::snapshot
