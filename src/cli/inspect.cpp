// `tern inspect SNAPSHOT [--json] [--module FILE] [--parents DIR]`: what a
// snapshot holds, for people: where and when it was taken, the module,
// memory, globals, tables, each thread's frames (innermost first) with
// function names, wasm offsets, locals and operands, the extension sections
// (WASI state), and for an incremental snapshot the chain of its parents.
// Every byte of every link is verified on the way; a damaged snapshot is an
// error.
#include "cli/commands.h"
#include "cli/host_options.h"
#include "migrate/gateway_records.h"
#include "snapshot/capture.h"
#include "snapshot/chain.h"
#include "snapshot/describe.h"
#include "snapshot/format.h"
#include "tern/error.h"
#include "util/file.h"
#include "util/sha256.h"
#include "wasi/state.h"
#include "wasm/decoder.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tern::cli {
namespace {

using nlohmann::json;

struct InspectOptions {
  std::string snapshot;
  std::string module;
  std::string parents;
  bool json = false;
};

// Renderers of extension sections; each owner adds its registration here.
void register_section_renderers() {
  snapshot::register_extension_renderer(
      wasi::kStateTag,
      {[](const snapshot::ExtensionSection& s) {
         return json::parse(wasi::describe_state_json(s));
       },
       [](const snapshot::ExtensionSection& s) { return wasi::describe_state(s); }});
  snapshot::register_extension_renderer(
      migrate::gateway::kGatewayTag,
      {migrate::gateway::describe_json, migrate::gateway::describe_text});
}

std::unique_ptr<wasm::Module> decode_for_names(std::vector<uint8_t> bytes,
                                               const std::string& from) {
  try {
    return std::make_unique<wasm::Module>(wasm::decode_module(std::move(bytes)));
  } catch (const DecodeError& e) {
    throw Error(
        fmt::format("{}: malformed module at offset 0x{:x}: {}", from, e.offset(), e.what()));
  }
}

std::string size_text(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < (1u << 20)) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  if (bytes < (1u << 30)) return fmt::format("{:.1f} MiB", bytes / 1048576.0);
  return fmt::format("{:.2f} GiB", bytes / 1073741824.0);
}

std::string optional_max(const json& max, const char* unit) {
  return max.is_null() ? "" : fmt::format(" (max {}{})", max.get<uint64_t>(), unit);
}

std::string values_text(const json& values) {
  if (values.empty()) return "-";
  std::string out;
  for (const json& v : values) {
    if (!out.empty()) out += ", ";
    if (v.contains("name")) out += "$" + v["name"].get<std::string>() + "=";
    out += v["type"].get<std::string>() + " " + v["value"].get<std::string>();
  }
  return out;
}

void print_header(const json& d, const std::string& path) {
  const json& h = d["host"];
  const json& m = d["module"];
  const std::string kind =
      d["parent"].is_null() ? "" : ", incremental on " + d["parent"]["name"].get<std::string>();
  fmt::print("{}: tern snapshot, format version {}{}{}\n", path, d["format_version"].get<int>(),
             kind, d["chunk_index"].get<bool>() ? ", chunk index" : "");
  fmt::print("  taken {} by tern {} on {} ({}-endian), engine {}\n", h["time"].get<std::string>(),
             h["tern_version"].get<std::string>(), h["arch"].get<std::string>(),
             h["byte_order"].get<std::string>(), h["engine"].get<std::string>());
  std::string included = m["included"].get<bool>()
                             ? fmt::format("included, {}", size_text(m["size"].get<uint64_t>()))
                             : "not included";
  fmt::print("  module sha256 {} ({})\n", m["sha256"].get<std::string>(), included);
}

void print_state(const json& d) {
  for (const json& m : d["memories"]) {
    const bool carried = m.contains("carried_pages");
    const uint64_t pages = m[carried ? "carried_pages" : "nonzero_pages"].get<uint64_t>();
    fmt::print("memory {}: {} pages{}{}, {} {} ({}), {} stored\n", m["index"].get<size_t>(),
               m["pages"].get<uint64_t>(), optional_max(m["max_pages"], ""),
               m["shared"].get<bool>() ? ", shared" : "", pages,
               carried ? "written since the parent" : "non-zero", size_text(pages * 65536),
               size_text(m["stored_bytes"].get<uint64_t>()));
  }
  fmt::print("globals: {}\n", d["globals"].size());
  for (const json& g : d["globals"])
    fmt::print("  global {}: {}{} = {}\n", g["index"].get<size_t>(), g["type"].get<std::string>(),
               g["mutable"].get<bool>() ? " mut" : "", g["value"].get<std::string>());
  fmt::print("tables: {}\n", d["tables"].size());
  for (const json& t : d["tables"])
    fmt::print("  table {}: {}, {} elements{}, {} non-null\n", t["index"].get<size_t>(),
               t["elem_type"].get<std::string>(), t["size"].get<uint64_t>(),
               optional_max(t["max"], ""), t["non_null"].get<uint64_t>());
  fmt::print("dropped segments: elem {}, data {}\n", d["segments"]["elem_dropped"].dump(),
             d["segments"]["data_dropped"].dump());
}

void print_threads(const json& d) {
  for (const json& t : d["threads"]) {
    fmt::print("thread {}: {} frames, {} stable points\n", t["id"].get<uint32_t>(),
               t["frames"].size(), t["stable_points"].get<uint64_t>());
    for (const json& f : t["frames"]) {
      fmt::print("  #{} {} (func {}) at 0x{:x}, {}\n", f["depth"].get<size_t>(),
                 f["name"].get<std::string>(), f["function"].get<uint32_t>(),
                 f["offset"].get<uint32_t>(), f["kind"].get<std::string>());
      fmt::print("       locals: {}\n", values_text(f["locals"]));
      fmt::print("       stack:  {}\n", values_text(f["stack"]));
    }
  }
  for (const json& m : d["wait_queues"]) {
    fmt::print("wait queues of memory {}:\n", m["memory"].get<uint32_t>());
    for (const json& q : m["queues"]) {
      std::vector<std::string> waiters;
      for (const json& w : q["waiters"])
        waiters.push_back(w["remaining_ns"].is_null()
                              ? fmt::format("thread {}", w["thread"].get<uint64_t>())
                              : fmt::format("thread {} ({} ns left)", w["thread"].get<uint64_t>(),
                                            w["remaining_ns"].get<int64_t>()));
      fmt::print("  address {}: {}\n", q["address"].get<uint64_t>(), fmt::join(waiters, ", "));
    }
    for (const json& w : m["notified"])
      fmt::print("  notified, not yet returned: thread {} at address {}\n",
                 w["thread"].get<uint64_t>(), w["address"].get<uint64_t>());
  }
}

// wasi-threads: the spawned threads' own instances (their frames are
// printed with the main thread's).
void print_spawned(const json& d) {
  if (d["spawned"].is_null()) return;
  const json& sp = d["spawned"];
  fmt::print("spawned threads (wasi-threads): {} running, next tid {}\n", sp["threads"].size(),
             sp["next_tid"].get<uint32_t>());
  for (const json& t : sp["threads"]) {
    std::vector<std::string> globals;
    for (const json& g : t["globals"])
      if (g["mutable"].get<bool>())
        globals.push_back(fmt::format("{} {} = {}", g["index"].get<size_t>(),
                                      g["type"].get<std::string>(), g["value"].get<std::string>()));
    fmt::print("  thread {}: start arg {}, {} tables, mutable globals: {}\n",
               t["tid"].get<uint32_t>(), t["start_arg"].get<uint32_t>(), t["tables"].size(),
               globals.empty() ? "-" : fmt::format("{}", fmt::join(globals, ", ")));
  }
}

void print_sections(const json& d, const snapshot::Snapshot& s) {
  for (size_t i = 0; i < s.extensions.size(); ++i) {
    const snapshot::ExtensionSection& e = s.extensions[i];
    const json& described = d["sections"][i];
    fmt::print("section {} ({}, {})\n", snapshot::to_string_view(e.tag),
               e.optional ? "optional" : "required", size_text(e.payload.size()));
    const auto* renderer = snapshot::find_extension_renderer(e.tag);
    if (renderer && renderer->to_text) {
      for (const std::string& line : renderer->to_text(e)) fmt::print("  {}\n", line);
    } else if (described.contains("content")) {
      fmt::print("  {}\n", described["content"].dump());
    }
  }
}

// An incremental snapshot's chain, newest first: every link was read and
// verified, each parent against the size and SHA-256 its child records.
json chain_json(const std::vector<snapshot::ChainLink>& links) {
  json out = json::array();
  for (const snapshot::ChainLink& l : links) {
    json memories = json::array();
    for (const snapshot::MemoryImage& m : l.memories)
      memories.push_back({{"pages", m.pages},
                          {l.parent ? "carried_pages" : "nonzero_pages", m.nonzero_pages},
                          {"stored_bytes", m.stored_bytes}});
    out.push_back({{"path", l.path},
                   {"incremental", l.parent.has_value()},
                   {"bytes", l.bytes},
                   {"sha256", util::to_hex(l.sha256)},
                   {"memories", memories}});
  }
  return out;
}

void print_chain(const json& chain) {
  fmt::print("chain: {} snapshots, newest first, each verified\n", chain.size());
  for (const json& l : chain) {
    uint64_t carried = 0, pages = 0;
    for (const json& m : l["memories"]) {
      pages += m["pages"].get<uint64_t>();
      carried +=
          m[l["incremental"].get<bool>() ? "carried_pages" : "nonzero_pages"].get<uint64_t>();
    }
    fmt::print("  {}: {}, {} of {} pages, {}, sha256 {}\n", l["path"].get<std::string>(),
               l["incremental"].get<bool>() ? "incremental" : "self-contained", carried, pages,
               size_text(l["bytes"].get<uint64_t>()), l["sha256"].get<std::string>());
  }
}

int run_inspect(const InspectOptions& o) {
  register_section_renderers();
  snapshot::ReadOptions read_options;
  read_options.keep_memory = false; // verified and counted, not kept
  std::vector<snapshot::ChainLink> links;
  const snapshot::Snapshot s =
      snapshot::read_snapshot_chain(o.snapshot, read_options, {o.parents}, &links);

  std::unique_ptr<wasm::Module> module;
  std::string source;
  if (!o.module.empty()) {
    auto bytes = util::read_file(o.module);
    snapshot::check_module(s, util::sha256(bytes));
    module = decode_for_names(std::move(bytes), o.module);
    source = o.module;
  } else if (s.module.embed_binary) {
    const auto& b = s.module.binary.data;
    module = decode_for_names({b.begin(), b.end()}, o.snapshot + " (embedded module)");
    source = "snapshot";
  }
  json d = snapshot::describe_snapshot(s, module.get(), source);
  if (s.parent) d["chain"] = chain_json(links);
  if (o.json) {
    // Strings a forged HOST section carries need not be UTF-8: shown with
    // U+FFFD instead of failing (the WASI section's own strings keep
    // their bytes, wasi/state.h).
    fmt::print("{}\n", d.dump(2, ' ', false, json::error_handler_t::replace));
    return 0;
  }
  print_header(d, o.snapshot);
  print_state(d);
  print_threads(d);
  print_spawned(d);
  print_sections(d, s);
  if (s.parent) print_chain(d["chain"]);
  return 0;
}

} // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "inspect", "Show a snapshot: header, memory, globals, tables, threads' frames, host state");
  auto o = std::make_shared<InspectOptions>();
  cmd->add_option("SNAPSHOT", o->snapshot, "Snapshot file")->required()->type_name("");
  cmd->add_flag("--json", o->json, "Print the same as JSON");
  cmd->add_option("--module", o->module,
                  "The snapshot's module, for function and local names when the snapshot does "
                  "not include it (must have the snapshot's sha256)")
      ->type_name("FILE");
  add_parents_option(*cmd, o->parents);
  cmd->callback([o] { guarded([&] { return run_inspect(*o); }); });
}

TERN_COMMAND("inspect", add_inspect_command);

} // namespace tern::cli
