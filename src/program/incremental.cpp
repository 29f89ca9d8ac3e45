#include "program/incremental.h"

#include "snapshot/pages.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <algorithm>
#include <fmt/format.h>

namespace tern::program {
namespace {

std::string file_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// a |= b, growing a to b's size.
void merge(std::vector<bool>& a, const std::vector<bool>& b) {
  if (a.size() < b.size()) a.resize(b.size(), false);
  for (size_t i = 0; i < b.size(); ++i)
    if (b[i]) a[i] = true;
}

} // namespace

IncrementalChain::IncrementalChain(Program& program, std::string path) : path_(std::move(path)) {
  for (runtime::Memory* m : program.memories()) logs_.push_back(m->open_dirty_log());
  since_parent_.resize(logs_.size());
}

std::string IncrementalChain::tracking() const {
  return logs_.empty() ? "no memory to track" : logs_.front().description();
}

IncrementalChain::Link IncrementalChain::next(snapshot::Snapshot& snapshot) {
  if (snapshot.memories.size() != logs_.size())
    throw InternalError("the snapshot's memories are not the tracked ones");
  // Pages written since the parent: what the failed links since it would
  // have carried, and what was written since the last capture.
  PageSet since = since_parent_;
  std::vector<uint64_t> pages;
  for (size_t i = 0; i < logs_.size(); ++i) {
    merge(since[i], logs_[i].collect().wasm_pages());
    pages.push_back(snapshot.memories[i].pages);
  }
  Link link;
  link.path = fmt::format("{}.{}", path_, ++sequence_);
  link.head = path_;
  for (uint64_t p : pages) link.pages += p;
  if (parent_) {
    link.parent = parent_->path;
    snapshot.parent = parent_->ref;
    snapshot.module.embed_binary = false; // the chain's first link carries it
    for (size_t i = 0; i < logs_.size(); ++i) {
      const snapshot::MemoryImage& m = snapshot.memories[i];
      const uint64_t parent_pages = std::min(parent_->pages[i], pages[i]);
      std::vector<bool> carried(since[i].begin(),
                                since[i].begin() + std::min<size_t>(since[i].size(), parent_pages));
      carried.resize(parent_pages, false);
      // Pages the parent did not have read as zero in it: only the
      // non-zero ones need carrying.
      const std::vector<bool> grown = snapshot::find_nonzero_pages(
          m.contents.data.subspan(parent_pages * snapshot::kPageSize), m.private_mapping);
      carried.insert(carried.end(), grown.begin(), grown.end());
      link.carried += std::count(carried.begin(), carried.end(), true);
      link.carried_pages.push_back(std::move(carried));
    }
  }
  attempt_ = Attempt{link, std::move(since), std::move(pages)};
  return link;
}

void IncrementalChain::finished(const Link& link,
                                const std::optional<snapshot::WrittenSnapshot>& written) {
  if (!attempt_ || attempt_->link.path != link.path)
    throw InternalError("an incremental link finished that was not started");
  if (written) {
    // The new parent; nothing written since its capture is known yet.
    parent_ = Parent{{file_name(link.path), written->bytes, written->sha256},
                     link.path,
                     std::move(attempt_->pages)};
    since_parent_.assign(logs_.size(), {});
  } else if (parent_) {
    since_parent_ = std::move(attempt_->since_parent); // the next link carries these too
  }
  attempt_.reset();
}

} // namespace tern::program
