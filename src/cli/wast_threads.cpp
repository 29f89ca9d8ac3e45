#include "cli/wast_threads.h"

#include "cli/wast_convert.h"
#include "tern/error.h"
#include "util/file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace tern::cli {
namespace {

using nlohmann::json;

// A parenthesized form of the script: [begin, end) in the text, its first
// word and the line it starts on.
struct Form {
  size_t begin = 0, end = 0;
  std::string head;
  int line = 1;
};

class Scanner {
public:
  Scanner(std::string_view text, std::string_view where) : text_(text), where_(where) {}

  // The forms directly inside [begin, end), in order.
  std::vector<Form> forms(size_t begin, size_t end) {
    std::vector<Form> out;
    size_t i = begin;
    for (;;) {
      i = skip_space(i, end);
      if (i >= end) return out;
      if (text_[i] != '(') {
        i = skip_atom(i, end);
        continue;
      }
      Form f;
      f.begin = i;
      f.line = line_at(i);
      f.end = close_of(i, end);
      size_t h = skip_space(i + 1, f.end);
      f.head = std::string(text_.substr(h, skip_atom(h, f.end) - h));
      out.push_back(f);
      i = f.end;
    }
  }

  // The atoms and forms inside form `f` after its head, as text pieces.
  std::vector<std::pair<size_t, size_t>> items(const Form& f) {
    std::vector<std::pair<size_t, size_t>> out;
    size_t i = skip_space(f.begin + 1, f.end - 1);
    i = skip_atom(i, f.end - 1); // the head
    for (;;) {
      i = skip_space(i, f.end - 1);
      if (i >= f.end - 1) return out;
      size_t e = text_[i] == '(' ? close_of(i, f.end - 1) : skip_atom(i, f.end - 1);
      out.emplace_back(i, e);
      i = e;
    }
  }

  int line_at(size_t pos) const {
    return 1 + static_cast<int>(std::count(text_.begin(), text_.begin() + pos, '\n'));
  }
  [[noreturn]] void fail(size_t pos, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {}", where_, line_at(pos), what));
  }

private:
  // Past white space and comments (";; ..." and nested "(; ... ;)").
  size_t skip_space(size_t i, size_t end) const {
    while (i < end) {
      char c = text_[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
      } else if (c == ';' && i + 1 < end && text_[i + 1] == ';') {
        while (i < end && text_[i] != '\n') ++i;
      } else if (c == '(' && i + 1 < end && text_[i + 1] == ';') {
        i = block_comment_end(i, end);
      } else {
        break;
      }
    }
    return i;
  }
  size_t block_comment_end(size_t i, size_t end) const {
    int depth = 0;
    while (i + 1 < end) {
      if (text_[i] == '(' && text_[i + 1] == ';') {
        ++depth;
        i += 2;
      } else if (text_[i] == ';' && text_[i + 1] == ')') {
        i += 2;
        if (--depth == 0) return i;
      } else {
        ++i;
      }
    }
    fail(i, "unterminated block comment");
  }
  size_t skip_string(size_t i, size_t end) const {
    for (++i; i < end; ++i) {
      if (text_[i] == '\\') {
        ++i;
      } else if (text_[i] == '"') {
        return i + 1;
      }
    }
    fail(i, "unterminated string");
  }
  size_t skip_atom(size_t i, size_t end) const {
    if (i < end && text_[i] == '"') return skip_string(i, end);
    while (i < end) {
      char c = text_[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')' || c == ';')
        break;
      if (c == '"') {
        i = skip_string(i, end);
        continue;
      }
      ++i;
    }
    return i;
  }
  // One past the parenthesis that closes the one at `open`.
  size_t close_of(size_t open, size_t end) const {
    size_t i = open + 1;
    for (;;) {
      i = skip_space(i, end);
      if (i >= end) fail(open, "unbalanced parentheses");
      if (text_[i] == ')') return i + 1;
      if (text_[i] == '(')
        i = close_of(i, end);
      else
        i = skip_atom(i, end);
    }
  }

  std::string_view text_;
  std::string_view where_;
};

bool is_thread_command(const Form& f) {
  return f.head == "thread" || f.head == "wait";
}

// `text` with [begin, end) made blank, newlines kept (so line numbers stay).
void blank(std::string& text, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i)
    if (text[i] != '\n') text[i] = ' ';
}

class Converter {
public:
  Converter(const std::string& wast_path, const std::string& out_dir)
      : where_(wast_path), out_dir_(out_dir) {
    auto bytes = util::read_file(wast_path);
    text_.assign(bytes.begin(), bytes.end());
    stem_ = std::filesystem::path(wast_path).stem().string();
  }

  bool has_thread_commands() {
    Scanner scan(text_, where_);
    auto forms = scan.forms(0, text_.size());
    return std::any_of(forms.begin(), forms.end(), is_thread_command);
  }

  // The commands of the forms in [begin, end): placeholders first (modules
  // named `shared`, dropped from the result), the rest at their lines.
  json commands(size_t begin, size_t end, const std::vector<std::string>& shared) {
    end = std::min(end, text_.size());
    Scanner scan(text_, where_);
    auto forms = scan.forms(begin, end);
    // The part wast2json converts: this range without thread commands, at
    // the same lines as in the script.
    std::string part = placeholders(shared);
    int first_line = scan.line_at(begin);
    part += std::string(static_cast<size_t>(first_line - 1), '\n');
    size_t line_start = text_.rfind('\n', begin == 0 ? 0 : begin - 1);
    line_start = line_start == std::string::npos || begin == 0 ? 0 : line_start + 1;
    std::string body = text_.substr(line_start, end - line_start);
    blank(body, 0, begin - line_start);
    json special = json::array();
    for (const Form& f : forms) {
      if (!is_thread_command(f)) continue;
      blank(body, f.begin - line_start, f.end - line_start);
      special.push_back(f.head == "thread" ? thread_command(scan, f) : wait_command(scan, f));
    }
    part += body;
    json converted = convert_text(part);
    json out = json::array();
    size_t next_special = 0;
    size_t skipped = 0;
    for (auto& cmd : converted) {
      if (skipped < shared.size()) { // a placeholder
        ++skipped;
        continue;
      }
      int line = cmd.value("line", 0);
      while (next_special < special.size() && special[next_special]["line"].get<int>() < line)
        out.push_back(std::move(special[next_special++]));
      out.push_back(std::move(cmd));
    }
    while (next_special < special.size()) out.push_back(std::move(special[next_special++]));
    return out;
  }

private:
  // (thread $T (shared (module $M))* command*)
  json thread_command(Scanner& scan, const Form& f) {
    auto items = scan.items(f);
    if (items.empty() || text_[items[0].first] != '$') scan.fail(f.begin, "thread without a name");
    std::string name = text_.substr(items[0].first, items[0].second - items[0].first);
    std::vector<std::string> shared;
    size_t body_begin = items[0].second;
    for (size_t k = 1; k < items.size(); ++k) {
      Form item{items[k].first, items[k].second, {}, 0};
      if (text_[item.begin] != '(') break;
      auto inner = scan.forms(item.begin, item.end);
      if (inner.empty() || inner[0].head != "shared") break;
      // (shared (module $M) ...)
      for (const Form& m : scan.forms(inner[0].begin + 1, inner[0].end - 1)) {
        auto parts = scan.items(m);
        if (m.head != "module" || parts.size() != 1)
          scan.fail(m.begin, "expected (module $NAME) in (shared ...)");
        shared.push_back(text_.substr(parts[0].first, parts[0].second - parts[0].first));
      }
      body_begin = item.end;
    }
    json cmd = {{"type", "thread"}, {"line", f.line}, {"name", name}, {"shared", shared}};
    cmd["commands"] = commands(body_begin, f.end - 1, shared);
    return cmd;
  }

  json wait_command(Scanner& scan, const Form& f) {
    auto items = scan.items(f);
    if (items.size() != 1 || text_[items[0].first] != '$')
      scan.fail(f.begin, "expected (wait $THREAD)");
    return {{"type", "wait"},
            {"line", f.line},
            {"thread", text_.substr(items[0].first, items[0].second - items[0].first)}};
  }

  static std::string placeholders(const std::vector<std::string>& shared) {
    std::string out;
    for (const auto& name : shared) out += fmt::format("(module {}) ", name);
    return out;
  }

  json convert_text(const std::string& text) {
    std::string name = fmt::format("{}.part{}", stem_, parts_++);
    std::string path = fmt::format("{}/{}.wast", out_dir_, name);
    {
      std::ofstream out(path, std::ios::binary);
      out << text;
      if (!out) throw Error(fmt::format("cannot write {}", path));
    }
    std::string json_path;
    try {
      json_path = convert_wast(path, out_dir_);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", where_, e.what()));
    }
    auto bytes = util::read_file(json_path);
    return json::parse(bytes.begin(), bytes.end())["commands"];
  }

  std::string where_;
  std::string out_dir_;
  std::string text_;
  std::string stem_;
  int parts_ = 0;
};

} // namespace

std::string convert_script(const std::string& wast_path, const std::string& out_dir) {
  if (::access(wast_path.c_str(), R_OK) != 0)
    throw Error(fmt::format("cannot read {}: {}", wast_path, std::strerror(errno)));
  Converter converter(wast_path, out_dir);
  bool threads = false;
  try {
    threads = converter.has_thread_commands();
  } catch (const Error&) {
    // Not even balanced: wast2json says what is wrong with it.
  }
  if (!threads) return convert_wast(wast_path, out_dir);
  json list = {{"source_filename", wast_path}, {"commands", converter.commands(0, SIZE_MAX, {})}};
  std::string stem = std::filesystem::path(wast_path).stem().string();
  std::string json_path = fmt::format("{}/{}.json", out_dir, stem);
  std::ofstream out(json_path, std::ios::binary);
  out << list.dump();
  if (!out) throw Error(fmt::format("cannot write {}", json_path));
  return json_path;
}

} // namespace tern::cli
