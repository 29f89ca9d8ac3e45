#include "wat.h"

#include "util/file.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace tern::test {

std::vector<uint8_t> wat_to_wasm(const std::string& wat, const std::string& flags) {
  char dir_template[] = "/tmp/tern-wat-XXXXXX";
  const char* dir = ::mkdtemp(dir_template);
  if (!dir) throw std::runtime_error("mkdtemp failed");
  std::string in = std::string(dir) + "/m.wat";
  std::string out = std::string(dir) + "/m.wasm";
  std::ofstream(in) << wat;
  std::string cmd = "wat2wasm " + flags + " " + in + " -o " + out + " 2>" + dir + "/err";
  int rc = std::system(cmd.c_str());
  std::vector<uint8_t> bytes;
  if (rc == 0) bytes = util::read_file(out);
  std::string cleanup = std::string("rm -rf ") + dir;
  [[maybe_unused]] int ignored = std::system(cleanup.c_str());
  if (rc != 0) throw std::runtime_error("wat2wasm failed for:\n" + wat);
  return bytes;
}

} // namespace tern::test
