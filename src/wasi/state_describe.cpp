// The WASI section for people (`tern inspect`): its records as JSON, and
// text lines laid out from that JSON.
#include "wasi/state.h"
#include "wasi/state_records.h"
#include "wasi/state_sockets.h"
#include "wasm/reader.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tern::wasi {
namespace {

using nlohmann::json;
using state::Origin;
using state::SavedFd;
using state::SavedState;

constexpr const char* kStreamNames[] = {"stdin", "stdout", "stderr"};

template <typename Flags, size_t N>
json flag_names(uint32_t value, const std::pair<Flags, const char*> (&names)[N]) {
  json out = json::array();
  for (const auto& [bit, name] : names)
    if (value & bit) out.push_back(name);
  return out;
}

json fdflag_names(uint16_t flags) {
  static constexpr std::pair<uint16_t, const char*> kNames[] = {{fdflag::append, "append"},
                                                                {fdflag::dsync, "dsync"},
                                                                {fdflag::nonblock, "nonblock"},
                                                                {fdflag::rsync, "rsync"},
                                                                {fdflag::sync, "sync"}};
  return flag_names(flags, kNames);
}

json oflag_names(uint16_t flags) {
  static constexpr std::pair<uint16_t, const char*> kNames[] = {{oflag::creat, "creat"},
                                                                {oflag::directory, "directory"},
                                                                {oflag::excl, "excl"},
                                                                {oflag::trunc, "trunc"}};
  return flag_names(flags, kNames);
}

std::string hex(uint64_t v) {
  return fmt::format("0x{:x}", v);
}

// A string of the snapshot (an argument, a variable, a path: any bytes) as
// JSON: itself when it is UTF-8, as JSON text must be, else the array of
// its byte values, as journalctl writes such fields, so that no byte is
// lost or made up.
json text_json(const std::string& s) {
  const auto bytes = std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  if (wasm::is_valid_utf8(bytes)) return s;
  return json(std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

json text_json(const std::vector<std::string>& list) {
  json out = json::array();
  for (const std::string& s : list) out.push_back(text_json(s));
  return out;
}

// text_json's value for people: the string, or its bytes with those that
// are not printable ASCII (or are \\ or ') as \xHH.
std::string display(const json& text) {
  if (text.is_string()) return text.get<std::string>();
  std::string out;
  for (const json& b : text) {
    const auto c = b.get<uint8_t>();
    const bool plain = c >= 0x20 && c < 0x7f && c != '\\' && c != '\'';
    out += plain ? std::string(1, char(c)) : fmt::format("\\x{:02x}", c);
  }
  return out;
}

json path_json(const SavedFd& f) {
  json out = {{"oflags", oflag_names(f.oflags)},
              {"symlink_follow", (f.lookupflags & lookupflag::symlink_follow) != 0}};
  if (f.kind == FdKind::File) {
    out["offset"] = f.position;
    out["size"] = f.size;
    out["mtime_ns"] = f.mtime_ns;
  }
  if (f.listing) out["listing_entries"] = f.listing->entries.size();
  return out;
}

json fd_json(const SavedFd& f, const SavedState& s) {
  json out = {{"fd", f.fd},
              {"kind", std::string(to_string(f.kind))},
              {"origin", std::string(state::to_string(f.origin))},
              {"fdflags", fdflag_names(f.fdflags)},
              {"rights_base", hex(f.rights_base)},
              {"rights_inheriting", hex(f.rights_inheriting)}};
  switch (f.origin) {
  case Origin::Stdio:
    out["stream"] = kStreamNames[f.stream];
    out["redirected"] = f.redirected;
    out["path"] = text_json(f.path);
    if (f.redirected) out["stream_offset"] = f.position;
    break;
  case Origin::Preopen:
    out["preopen"] = f.preopen;
    out["path"] = text_json(s.preopens[f.preopen].guest_path);
    break;
  case Origin::Path:
    out["preopen"] = f.preopen;
    out["path"] = text_json(state::guest_name_of(s.preopens[f.preopen].guest_path, f.path));
    out.update(path_json(f));
    break;
  case Origin::Socket:
    out["path"] = text_json(f.path);
    out["socket"] = state::socket_json(f.socket);
    break;
  }
  return out;
}

json state_json(std::span<const uint8_t> payload) {
  const SavedState s = state::decode(payload);
  json preopens = json::array();
  for (size_t i = 0; i < s.preopens.size(); ++i)
    preopens.push_back({{"index", i},
                        {"guest", text_json(s.preopens[i].guest_path)},
                        {"host", text_json(s.preopens[i].host_path)}});
  json poll = nullptr;
  if (s.pending_poll)
    poll = {{"address", s.pending_poll->in},
            {"subscriptions", s.pending_poll->deadlines.size()},
            {"deadlines", s.pending_poll->deadlines}};
  json fds = json::array();
  for (const SavedFd& f : s.fds) fds.push_back(fd_json(f, s));
  json files = json::array();
  for (const state::BundledFile& f : s.files)
    files.push_back(
        {{"preopen", f.preopen},
         {"path", text_json(state::guest_name_of(s.preopens[f.preopen].guest_path, f.path))},
         {"size", f.size},
         {"stored_bytes", f.zstd.size()},
         {"mode", fmt::format("0{:o}", f.mode)},
         {"mtime_ns", f.mtime_ns}});
  return {{"args", text_json(s.args)},
          {"env", text_json(s.env)},
          {"preopens", std::move(preopens)},
          {"clocks",
           {{"monotonic_ns", s.monotonic_ns},
            {"process_cputime_ns", s.process_cputime_ns},
            {"thread_cputime_ns", s.thread_cputime_ns}}},
          {"pending_poll", std::move(poll)},
          {"fds", std::move(fds)},
          {"bundled_files", std::move(files)}};
}

std::string seconds(uint64_t ns) {
  return fmt::format("{}.{:09} s", ns / 1000000000, ns % 1000000000);
}

std::string joined(const json& list, const char* separator, const char* empty = "-") {
  if (list.empty()) return empty;
  std::string out;
  for (const json& item : list) {
    if (!out.empty()) out += separator;
    out += item.get<std::string>();
  }
  return out;
}

// A list of strings as a shell would read it back.
std::string quoted_words(const json& list) {
  std::string out;
  for (const json& item : list) {
    if (!out.empty()) out += ' ';
    if (!item.is_string()) { // bytes that are not UTF-8, as bash's $'...' reads them
      out += "$'" + display(item) + "'";
      continue;
    }
    const std::string word = item.get<std::string>();
    const bool plain = !word.empty() && word.find_first_of(" \t\n'\"\\$") == std::string::npos;
    out += plain ? word : json(word).dump();
  }
  return out;
}

// What a restore does with each kind of socket.
std::string socket_fate(const std::string& kind) {
  if (kind == "tcp-listener") return "bound again on restore";
  if (kind == "tcp-stream") return "comes back reset by the peer";
  return "opened again on restore";
}

std::string socket_text(const json& fd) {
  const json& s = fd["socket"];
  std::string text = s.contains("local") ? s["local"].get<std::string>() : "unbound";
  if (s.contains("peer"))
    text += (s.contains("connecting") ? " -> " : " <-> ") + s["peer"].get<std::string>();
  std::vector<std::string> notes;
  if (s.contains("backlog")) notes.push_back(fmt::format("backlog {}", s["backlog"].get<int>()));
  if (s.contains("connecting")) notes.push_back("connecting");
  for (const auto& [name, value] : s["options"].items())
    notes.push_back(value == 1 ? name : fmt::format("{}={}", name, value.get<uint64_t>()));
  if (s.contains("memberships")) notes.push_back("member of " + joined(s["memberships"], " "));
  if (s.contains("shut_read")) notes.push_back("shut down for reading");
  if (s.contains("shut_write")) notes.push_back("shut down for writing");
  if (!notes.empty()) text += " (" + joined(json(notes), ", ") + ")";
  return text + ", " + socket_fate(fd["kind"].get<std::string>());
}

std::string fd_text(const json& fd) {
  const std::string origin = fd["origin"].get<std::string>();
  const std::string kind = fd["kind"].get<std::string>();
  std::string text = fmt::format("fd {}: ", fd["fd"].get<uint32_t>());
  if (origin == "stdio") {
    text += fmt::format("{}, {} ({})", fd["stream"].get<std::string>(),
                        fd["redirected"].get<bool>() ? "redirected to " + display(fd["path"])
                                                     : std::string("inherited"),
                        kind);
    if (fd.contains("stream_offset"))
      text += fmt::format(", offset {}", fd["stream_offset"].get<uint64_t>());
  } else if (origin == "socket") {
    text += kind + " " + socket_text(fd);
  } else {
    text +=
        fmt::format("{} {} (preopen {})", kind, display(fd["path"]), fd["preopen"].get<uint32_t>());
  }
  if (fd.contains("offset"))
    text +=
        fmt::format(", offset {}, size {}, mtime {}", fd["offset"].get<uint64_t>(),
                    fd["size"].get<uint64_t>(), state::mtime_text(fd["mtime_ns"].get<int64_t>()));
  if (fd.contains("oflags") && !fd["oflags"].empty())
    text += ", oflags " + joined(fd["oflags"], "|");
  if (fd.contains("listing_entries"))
    text += fmt::format(", being read ({} entries)", fd["listing_entries"].get<size_t>());
  text += ", fdflags " + joined(fd["fdflags"], "|");
  text += fmt::format(", rights {}/{}", fd["rights_base"].get<std::string>(),
                      fd["rights_inheriting"].get<std::string>());
  return text;
}

std::vector<std::string> state_lines(const json& d) {
  std::vector<std::string> lines;
  lines.push_back("args: " + quoted_words(d["args"]));
  lines.push_back(d["env"].empty() ? "env: (empty)" : "env: " + quoted_words(d["env"]));
  for (const json& p : d["preopens"])
    lines.push_back(fmt::format("preopen {}: {} (host {})", p["index"].get<size_t>(),
                                display(p["guest"]), display(p["host"])));
  const json& c = d["clocks"];
  lines.push_back(fmt::format("clocks: monotonic {}, process cputime {}, thread cputime {}",
                              seconds(c["monotonic_ns"].get<uint64_t>()),
                              seconds(c["process_cputime_ns"].get<uint64_t>()),
                              seconds(c["thread_cputime_ns"].get<uint64_t>())));
  if (!d["pending_poll"].is_null())
    lines.push_back(fmt::format("pending poll_oneoff: {} subscriptions at 0x{:x}",
                                d["pending_poll"]["subscriptions"].get<size_t>(),
                                d["pending_poll"]["address"].get<uint32_t>()));
  for (const json& fd : d["fds"]) lines.push_back(fd_text(fd));
  for (const json& f : d["bundled_files"])
    lines.push_back(fmt::format("bundled file {}: {} bytes ({} stored), mode {}, mtime {}",
                                display(f["path"]), f["size"].get<uint64_t>(),
                                f["stored_bytes"].get<uint64_t>(), f["mode"].get<std::string>(),
                                state::mtime_text(f["mtime_ns"].get<int64_t>())));
  return lines;
}

} // namespace

std::vector<std::string> describe_state(const snapshot::ExtensionSection& section) {
  return state_lines(state_json(section.payload));
}

std::string describe_state_json(const snapshot::ExtensionSection& section) {
  return state_json(section.payload).dump(2);
}

} // namespace tern::wasi
