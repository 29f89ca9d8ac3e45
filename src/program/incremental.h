// Incremental checkpoints (`tern run/restore --incremental`): the
// checkpoints a run writes to its --checkpoint-to PATH form a chain. The
// first is a self-contained snapshot; each later one carries only the
// memory pages written since the previous one written, and names it as its
// parent (snapshot/chain.h, docs/snapshot-format.md).
//
// Files: checkpoint N of the run is written to PATH.N, and PATH is made a
// second name (hard link) of the newest, so `tern restore PATH` always
// continues from the latest checkpoint and every older one stays
// restorable. Links live side by side: a child names its parent by file
// name and SHA-256, and restore looks for the parent beside it.
//
// Pages written are found by dirty-page tracking (runtime/dirty_pages.h),
// started before the program runs. A link whose write fails is nobody's
// parent: the next link carries its pages too, against the last link that
// was written.
#pragma once

#include "program/program.h"
#include "runtime/dirty_pages.h"
#include "snapshot/format.h"

#include <optional>
#include <string>
#include <vector>

namespace tern::program {

class IncrementalChain {
public:
  // Starts tracking `program`'s memories; links go to `path`.N. Throws
  // tern::Error when the tracking mechanism forced by the environment does
  // not work here.
  IncrementalChain(Program& program, std::string path);

  // How pages are tracked, for --verbose-checkpoints.
  std::string tracking() const;

  struct Link {
    std::string path;     // PATH.N
    std::string head;     // PATH: made a second name of `path` once written
    std::string parent;   // the parent's path; "" for a self-contained link
    uint64_t carried = 0; // pages written since the parent (self-contained: 0)
    uint64_t pages = 0;   // pages of all memories
    // WriteOptions::carried_pages for an incremental link: the pages
    // written since the parent, and of those the parent did not have, the
    // non-zero ones. Empty for a self-contained link.
    snapshot::CarriedPages carried_pages;
  };

  // At a checkpoint (the program stopped, the previous link's write
  // finished): makes `snapshot`, captured from the program, the next link
  // (sets its parent; the link says which pages to write).
  Link next(snapshot::Snapshot& snapshot);
  // The write of `link` ended: with what was written, or nullopt when it
  // failed.
  void finished(const Link& link, const std::optional<snapshot::WrittenSnapshot>& written);

private:
  using PageSet = std::vector<std::vector<bool>>; // per memory, per wasm page
  struct Parent {
    snapshot::ParentRef ref;
    std::string path;
    std::vector<uint64_t> pages; // per memory, at its capture
  };
  struct Attempt {
    Link link;
    PageSet since_parent;        // through this link's capture
    std::vector<uint64_t> pages; // per memory, at its capture
  };

  std::string path_;
  std::vector<runtime::DirtyLog> logs_; // one per memory
  uint64_t sequence_ = 0;
  std::optional<Parent> parent_;
  PageSet since_parent_; // written between the parent's capture and the last capture
  std::optional<Attempt> attempt_;
};

} // namespace tern::program
