// `tern snapshot flatten CHAIN_HEAD -o OUT [--parents DIR]`: one
// self-contained snapshot (format version 1) from an incremental snapshot
// and its parents: the head's state, with memory composed from the whole
// chain. OUT restores exactly as the head does, needs no parent, and can be
// read by a tern that predates incremental snapshots.
#include "cli/commands.h"
#include "cli/host_options.h"
#include "snapshot/chain.h"
#include "tern/error.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/stat.h>

namespace tern::cli {
namespace {

struct FlattenOptions {
  std::string head;
  std::string output;
  std::string parents;
};

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

int flatten(const FlattenOptions& o) {
  std::vector<snapshot::ChainLink> links;
  snapshot::Snapshot s = snapshot::read_snapshot_chain(o.head, {}, {o.parents}, &links);
  // Replacing a parent would break every snapshot after it; replacing the
  // head itself is fine (nothing names it).
  for (size_t i = 1; i < links.size(); ++i)
    if (same_file(links[i].path, o.output))
      throw Error(fmt::format("{} is a parent in the chain of {}: writing over it would break "
                              "the snapshots after it",
                              o.output, o.head));
  s.parent.reset();
  snapshot::write_snapshot_file(o.output, s);
  return 0;
}

void add_snapshot_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("snapshot", "Work on snapshot files");
  cmd->require_subcommand(1);
  auto* flat = cmd->add_subcommand(
      "flatten", "Write one self-contained snapshot from an incremental snapshot and its parents");
  auto o = std::make_shared<FlattenOptions>();
  flat->add_option("CHAIN_HEAD", o->head, "The newest snapshot of the chain")
      ->required()
      ->type_name("");
  flat->add_option("-o,--output", o->output, "Where the self-contained snapshot goes")
      ->required()
      ->type_name("OUT");
  add_parents_option(*flat, o->parents);
  flat->callback([o] { guarded([&] { return flatten(*o); }); });
}

} // namespace

TERN_COMMAND("snapshot", add_snapshot_command);

} // namespace tern::cli
