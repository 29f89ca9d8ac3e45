#include "snapshot/describe.h"

#include "snapshot/format.h"
#include "snapshot/pages.h"

#include <bit>
#include <ctime>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>

namespace tern::snapshot {
namespace {

using nlohmann::json;
using wasm::ValType;

std::map<Tag, ExtensionRenderer>& renderers() {
  static std::map<Tag, ExtensionRenderer> registry;
  return registry;
}

std::string utc_time(uint64_t unix_time_ns) {
  const auto seconds = static_cast<std::time_t>(unix_time_ns / 1000000000u);
  std::tm tm{};
  if (!::gmtime_r(&seconds, &tm)) return "?";
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string func_name(const wasm::Module* module, uint32_t index) {
  return module && index < module->func_types.size() ? module->func_name(index)
                                                     : fmt::format("func[{}]", index);
}

json value_json(const runtime::ViewValue& v) {
  return {{"type", std::string(wasm::to_string(v.type))}, {"value", value_text(v)}};
}

json host_json(const HostInfo& h) {
  return {{"tern_version", h.tern_version},
          {"arch", h.arch},
          {"byte_order", h.big_endian ? "big" : "little"},
          {"engine", h.engine},
          {"time", utc_time(h.unix_time_ns)},
          {"unix_time_ns", h.unix_time_ns}};
}

json module_json(const Snapshot& s, const std::string& source) {
  json m = {{"sha256", s.module.sha256 ? util::to_hex(*s.module.sha256) : ""},
            {"included", s.module.embed_binary}};
  if (s.module.embed_binary) m["size"] = s.module.binary.data.size();
  m["names_from"] = source.empty() ? json(nullptr) : json(source);
  return m;
}

// An incremental snapshot carries pages written since its parent (zero or
// not): "carried_pages" there, "nonzero_pages" in a self-contained one.
json memory_json(size_t index, const MemoryImage& m, bool incremental) {
  return {{"index", index},
          {"pages", m.pages},
          {"max_pages", m.max_pages ? json(*m.max_pages) : json(nullptr)},
          {"shared", m.shared},
          {"bytes", m.pages * kPageSize},
          {incremental ? "carried_pages" : "nonzero_pages", m.nonzero_pages},
          {"stored_bytes", m.stored_bytes}};
}

json table_json(size_t index, const TableImage& t) {
  const auto non_null =
      std::count_if(t.elements.begin(), t.elements.end(), [](uint32_t e) { return e != 0; });
  return {{"index", index},
          {"elem_type", std::string(wasm::to_string(t.elem_type))},
          {"size", t.elements.size()},
          {"max", t.max ? json(*t.max) : json(nullptr)},
          {"non_null", non_null}};
}

json dropped_indices(const std::vector<bool>& flags) {
  json out = json::array();
  for (size_t i = 0; i < flags.size(); ++i)
    if (flags[i]) out.push_back(i);
  return out;
}

json frame_json(const runtime::ViewFrame& f, size_t depth, const wasm::Module* module) {
  json locals = json::array();
  const std::map<uint32_t, std::string>* names = nullptr;
  if (module) {
    auto it = module->names.locals.find(f.func_index);
    if (it != module->names.locals.end()) names = &it->second;
  }
  for (size_t i = 0; i < f.locals.size(); ++i) {
    json v = value_json(f.locals[i]);
    if (names) {
      auto n = names->find(static_cast<uint32_t>(i));
      if (n != names->end()) v["name"] = n->second;
    }
    locals.push_back(std::move(v));
  }
  json stack = json::array();
  for (const auto& v : f.stack) stack.push_back(value_json(v));
  return {{"depth", depth},
          {"function", f.func_index},
          {"name", func_name(module, f.func_index)},
          {"offset", f.wasm_offset},
          {"kind", frame_kind_name(f.kind)},
          {"locals", std::move(locals)},
          {"stack", std::move(stack)}};
}

json thread_json(const ThreadImage& t, const wasm::Module* module) {
  json frames = json::array();
  // Innermost first, like a backtrace.
  const auto& fs = t.view.frames;
  for (size_t i = fs.size(); i-- > 0;)
    frames.push_back(frame_json(fs[i], fs.size() - 1 - i, module));
  return {{"id", t.id}, {"stable_points", t.view.stable_points}, {"frames", std::move(frames)}};
}

json wait_queues_json(const WaitQueueImage& m) {
  json queues = json::array();
  for (const auto& q : m.state.queues) {
    json waiters = json::array();
    for (const auto& w : q.waiters)
      waiters.push_back({{"thread", w.thread_id},
                         {"remaining_ns", w.remaining_ns ? json(*w.remaining_ns) : json(nullptr)}});
    queues.push_back({{"address", q.addr}, {"waiters", std::move(waiters)}});
  }
  json woken = json::array();
  for (const auto& w : m.state.woken)
    woken.push_back({{"thread", w.thread_id}, {"address", w.addr}});
  return {{"memory", m.memory}, {"queues", std::move(queues)}, {"notified", std::move(woken)}};
}

// SPWN: each spawned thread's own instance (its frames are in "threads").
json spawned_json(const SpawnedThreads& spawned) {
  json threads = json::array();
  for (const SpawnedThreadImage& t : spawned.threads) {
    json globals = json::array();
    for (size_t i = 0; i < t.globals.size(); ++i) {
      json g = value_json(t.globals[i].value);
      g["index"] = i;
      g["mutable"] = t.globals[i].mut;
      globals.push_back(std::move(g));
    }
    json tables = json::array();
    for (size_t i = 0; i < t.tables.size(); ++i) tables.push_back(table_json(i, t.tables[i]));
    threads.push_back({{"tid", t.tid},
                       {"start_arg", t.start_arg},
                       {"globals", std::move(globals)},
                       {"tables", std::move(tables)},
                       {"segments",
                        {{"elem_dropped", dropped_indices(t.segments.elem_dropped)},
                         {"data_dropped", dropped_indices(t.segments.data_dropped)}}}});
  }
  return {{"next_tid", spawned.next_tid}, {"threads", std::move(threads)}};
}

json extension_json(const ExtensionSection& e) {
  json out = {{"tag", std::string(to_string_view(e.tag))},
              {"optional", e.optional},
              {"bytes", e.payload.size()}};
  if (const ExtensionRenderer* r = find_extension_renderer(e.tag); r && r->to_json)
    out["content"] = r->to_json(e);
  return out;
}

} // namespace

void register_extension_renderer(const Tag& tag, ExtensionRenderer renderer) {
  renderers()[tag] = std::move(renderer);
}

const ExtensionRenderer* find_extension_renderer(const Tag& tag) {
  auto it = renderers().find(tag);
  return it == renderers().end() ? nullptr : &it->second;
}

std::string value_text(const runtime::ViewValue& v) {
  switch (v.type) {
  case ValType::I32:
    return fmt::format("{}", static_cast<int32_t>(v.bits));
  case ValType::I64:
    return fmt::format("{}", static_cast<int64_t>(v.bits));
  case ValType::F32:
    return fmt::format("{}", std::bit_cast<float>(static_cast<uint32_t>(v.bits)));
  case ValType::F64:
    return fmt::format("{}", std::bit_cast<double>(v.bits));
  case ValType::FuncRef:
    return v.bits == 0 ? "ref.null func" : fmt::format("ref.func {}", v.bits - 1);
  case ValType::ExternRef:
    return "ref.null extern";
  case ValType::V128:
    return "v128";
  }
  return "?";
}

std::string frame_kind_name(runtime::FrameKind kind) {
  switch (kind) {
  case runtime::FrameKind::FunctionEntry:
    return "function-entry";
  case runtime::FrameKind::LoopHeader:
    return "loop-header";
  case runtime::FrameKind::CallSite:
    return "call-site";
  case runtime::FrameKind::HostCall:
    return "host-call";
  case runtime::FrameKind::AtomicWait:
    return "atomic-wait";
  }
  return "?";
}

json describe_snapshot(const Snapshot& s, const wasm::Module* module,
                       const std::string& module_source) {
  json out;
  out["format_version"] = s.parent ? kIncrementalFormatVersion : kFormatVersion;
  out["chunk_index"] = s.chunk_index;
  out["host"] = host_json(s.host);
  out["module"] = module_json(s, module_source);
  out["parent"] = s.parent ? json{{"name", s.parent->name},
                                  {"bytes", s.parent->size},
                                  {"sha256", util::to_hex(s.parent->sha256)}}
                           : json(nullptr);
  out["memories"] = json::array();
  for (size_t i = 0; i < s.memories.size(); ++i)
    out["memories"].push_back(memory_json(i, s.memories[i], s.parent.has_value()));
  out["globals"] = json::array();
  for (size_t i = 0; i < s.globals.size(); ++i) {
    json g = value_json(s.globals[i].value);
    g["index"] = i;
    g["mutable"] = s.globals[i].mut;
    out["globals"].push_back(std::move(g));
  }
  out["tables"] = json::array();
  for (size_t i = 0; i < s.tables.size(); ++i) out["tables"].push_back(table_json(i, s.tables[i]));
  out["segments"] = {{"elem_dropped", dropped_indices(s.segments.elem_dropped)},
                     {"data_dropped", dropped_indices(s.segments.data_dropped)}};
  out["threads"] = json::array();
  for (const ThreadImage& t : s.threads) out["threads"].push_back(thread_json(t, module));
  out["wait_queues"] = json::array();
  for (const WaitQueueImage& m : s.wait_queues) out["wait_queues"].push_back(wait_queues_json(m));
  out["spawned"] = s.spawned ? spawned_json(*s.spawned) : json(nullptr);
  out["sections"] = json::array();
  for (const ExtensionSection& e : s.extensions) out["sections"].push_back(extension_json(e));
  return out;
}

} // namespace tern::snapshot
