// C++ guest (built with -fno-exceptions): counts the words of a file with
// the standard library (fstream, string, map, vector, sort) and writes the
// most frequent ones to stdout and to a result file next to the input.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

std::map<std::string, int> count_words(std::istream& in) {
  std::map<std::string, int> counts;
  std::string word;
  char c;
  auto flush = [&] {
    if (!word.empty()) ++counts[word];
    word.clear();
  };
  while (in.get(c)) {
    if (std::isalpha(static_cast<unsigned char>(c)))
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else
      flush();
  }
  flush();
  return counts;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: wordfreq INPUT OUTPUT\n");
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 1;
  }
  auto counts = count_words(in);
  std::vector<std::pair<std::string, int>> ranked(counts.begin(), counts.end());
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::ofstream out(argv[2]);
  std::printf("%zu distinct words\n", ranked.size());
  for (size_t i = 0; i < ranked.size() && i < 3; ++i) {
    std::printf("%s %d\n", ranked[i].first.c_str(), ranked[i].second);
    out << ranked[i].first << ' ' << ranked[i].second << '\n';
  }
  return out.good() ? 0 : 1;
}
