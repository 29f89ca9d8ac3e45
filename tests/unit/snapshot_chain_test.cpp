// Incremental snapshots (format version 2) and chains of them
// (snapshot/chain.h): what a link carries, how the chain composes memory,
// and each way a chain can be broken, refused with one error naming the
// snapshot at fault.
#include "snapshot/chain.h"
#include "snapshot/format.h"
#include "snapshot/pages.h"
#include "snapshot_test_util.h"
#include "tern/error.h"
#include "util/file.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <unistd.h>

namespace tern::test {
namespace {

namespace fs = std::filesystem;
using snapshot::ParentRef;
using snapshot::Snapshot;

template <typename F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "message: " << e.what() << "\nexpected to contain: " << part;
  }
}

// WriteOptions carrying, of a one-memory snapshot `s`, the pages flagged
// in `written` below `parent_pages` and the non-zero pages above: what
// --incremental writes (program/incremental.h).
snapshot::WriteOptions carrying(const Snapshot& s, std::vector<bool> written,
                                uint64_t parent_pages) {
  written.resize(parent_pages, false);
  const std::vector<bool> grown = snapshot::find_nonzero_pages(
      s.memories[0].contents.data.subspan(parent_pages * kWasmPage), false);
  written.insert(written.end(), grown.begin(), grown.end());
  snapshot::WriteOptions options;
  options.carried_pages = {std::move(written)};
  return options;
}

// A one-memory snapshot whose page p holds the byte `fill[p]` everywhere
// (0: an all-zero page).
Snapshot with_pages(const std::vector<uint8_t>& fill) {
  Snapshot s = sample_snapshot();
  s.memories = {owned_memory(fill.size(), 16)};
  for (size_t p = 0; p < fill.size(); ++p)
    std::memset(mutable_bytes(s.memories[0]) + p * kWasmPage, fill[p], kWasmPage);
  return s;
}

class Chain : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tern-chain-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes `s` as `name`, incremental on `parent` (written before) when
  // given, carrying the pages `written` says below the parent's size.
  ParentRef write(const std::string& name, Snapshot s, const ParentRef* parent = nullptr,
                  std::vector<bool> written = {}, uint64_t parent_pages = 0) {
    snapshot::WriteOptions options;
    if (parent) {
      s.parent = *parent;
      options = carrying(s, std::move(written), parent_pages);
      s.module.embed_binary = false;
    }
    const snapshot::WrittenSnapshot w = snapshot::write_snapshot_file(path(name), s, options);
    return ParentRef{name, w.bytes, w.sha256};
  }

  // A chain s.1 (pages 1,2,3,0), s.2 (page 1 rewritten, one page grown),
  // s.3 (page 2 cleared to zero, page 4 written); returns the memory s.3
  // stands for.
  std::vector<uint8_t> three_links() {
    ParentRef p1 = write("s.1", with_pages({1, 2, 3, 0}));
    ParentRef p2 = write("s.2", with_pages({1, 9, 3, 0, 5}), &p1, {false, true}, 4);
    write("s.3", with_pages({1, 9, 0, 0, 7}), &p2, {false, false, true, false, true}, 5);
    return {1, 9, 0, 0, 7};
  }

  static void expect_memory(const Snapshot& s, const std::vector<uint8_t>& fill) {
    ASSERT_EQ(s.memories.size(), 1u);
    ASSERT_EQ(s.memories[0].pages, fill.size());
    const uint8_t* m = s.memories[0].contents.data.data();
    for (size_t p = 0; p < fill.size(); ++p)
      for (uint64_t i = 0; i < kWasmPage; i += 4093)
        ASSERT_EQ(m[p * kWasmPage + i], fill[p]) << "page " << p << " byte " << i;
  }

  fs::path dir_;
};

TEST_F(Chain, AnIncrementalSnapshotCarriesOnlyTheChangedPages) {
  ParentRef p1 = write("s.1", with_pages({1, 2, 3, 4}));
  ParentRef p2 = write("s.2", with_pages({1, 7, 3, 4, 0, 6}), &p1, {false, true, false, false}, 4);
  const Snapshot alone = snapshot::read_snapshot_file(path("s.2"));
  ASSERT_TRUE(alone.parent);
  EXPECT_EQ(alone.parent->name, "s.1");
  EXPECT_EQ(alone.parent->size, p1.size);
  EXPECT_EQ(alone.parent->sha256, p1.sha256);
  EXPECT_EQ(alone.memories[0].nonzero_pages, 2u); // page 1, and grown page 5 (page 4 is zero)
  EXPECT_FALSE(alone.module.embed_binary);
  EXPECT_EQ(alone.stream_bytes, p2.size);
  EXPECT_EQ(alone.stream_sha256, p2.sha256);
  const auto bytes = util::read_file(path("s.2"));
  EXPECT_EQ(bytes[8], snapshot::kIncrementalFormatVersion);
  EXPECT_EQ(util::read_file(path("s.1"))[8], snapshot::kFormatVersion);
}

TEST_F(Chain, ReadingTheHeadComposesEveryLink) {
  const std::vector<uint8_t> expected = three_links();
  std::vector<snapshot::ChainLink> links;
  const Snapshot s = snapshot::read_snapshot_chain(path("s.3"), {}, {}, &links);
  expect_memory(s, expected);
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[0].path, path("s.3"));
  EXPECT_EQ(links[2].path, path("s.1"));
  EXPECT_FALSE(links[2].parent);
  // The module comes from the link that carries it.
  EXPECT_TRUE(s.module.embed_binary);
  EXPECT_EQ(s.module.binary.data.size(), sample_snapshot().module.binary.data.size());
  // Every link of it restores its own state.
  expect_memory(snapshot::read_snapshot_chain(path("s.2"), {}, {}), {1, 9, 3, 0, 5});
  expect_memory(snapshot::read_snapshot_chain(path("s.1"), {}, {}), {1, 2, 3, 0});
}

TEST_F(Chain, ComposesIntoTheTargetItIsGiven) {
  const std::vector<uint8_t> expected = three_links();
  auto target = std::make_shared<snapshot::PageBuffer>(5 * kWasmPage);
  snapshot::ReadOptions options;
  options.memory_target = [&](uint32_t, const snapshot::MemoryImage& header, const Snapshot&) {
    return target->bytes().first(header.pages * kWasmPage);
  };
  Snapshot s = snapshot::read_snapshot_chain(path("s.3"), options, {});
  EXPECT_EQ(s.memories[0].contents.data.data(), target->bytes().data());
  expect_memory(s, expected);
}

TEST_F(Chain, InspectingVerifiesEveryLinkWithoutKeepingMemory) {
  three_links();
  snapshot::ReadOptions options;
  options.keep_memory = false;
  std::vector<snapshot::ChainLink> links;
  const Snapshot s = snapshot::read_snapshot_chain(path("s.3"), options, {}, &links);
  EXPECT_TRUE(s.memories[0].contents.data.empty());
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[0].memories[0].nonzero_pages, 2u); // pages 2 (zero, carried) and 4
  EXPECT_EQ(links[1].memories[0].nonzero_pages, 2u);
  EXPECT_EQ(links[2].memories[0].nonzero_pages, 3u);
}

TEST_F(Chain, ParentsAreLookedForBesideTheChildOrWhereTheUserSays) {
  const std::vector<uint8_t> expected = three_links();
  fs::create_directory(dir_ / "elsewhere");
  fs::rename(dir_ / "s.3", dir_ / "elsewhere" / "s.3");
  expect_error([&] { snapshot::read_snapshot_chain(path("elsewhere/s.3"), {}, {}); },
               {"elsewhere/s.3", "parent snapshot s.2 is missing"});
  expect_memory(snapshot::read_snapshot_chain(path("elsewhere/s.3"), {}, {dir_.string()}),
                expected);
}

TEST_F(Chain, ABrokenLinkIsOneErrorNamingIt) {
  three_links();
  const auto good = util::read_file(path("s.2"));
  auto put = [&](const std::vector<uint8_t>& bytes) {
    util::write_file_atomic(path("s.2"), bytes);
  };
  auto read = [&] { snapshot::read_snapshot_chain(path("s.3"), {}, {}); };

  fs::remove(path("s.2"));
  expect_error(read, {path("s.3"), "parent snapshot s.2 is missing"});
  auto shorter = good;
  shorter.pop_back();
  put(shorter);
  expect_error(read, {path("s.2"), "has changed", "expected " + std::to_string(good.size())});
  auto flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  put(flipped);
  expect_error(read, {path("s.2"), "corrupt", "the parent of " + path("s.3")});
  // Same size, valid, another snapshot: only the hash tells.
  put(good);
  Snapshot other = with_pages({1, 9, 3, 0, 5}); // s.2 as written, taken a nanosecond later
  other.host.unix_time_ns ^= 1;
  other.parent = snapshot::read_snapshot_file(path("s.2")).parent;
  other.module.embed_binary = false;
  util::VectorSink sink;
  snapshot::WriteOptions as_file = carrying(other, {false, true, false, false}, 4);
  as_file.chunk_index = true; // as write_snapshot_file writes it
  snapshot::write_snapshot(other, sink, as_file);
  ASSERT_EQ(sink.bytes().size(), good.size());
  put(sink.bytes());
  expect_error(read, {path("s.2"), "has changed since it was written (sha256"});
  fs::remove(path("s.2"));
  fs::create_symlink(path("s.1"), path("s.2"));
  expect_error(read, {path("s.2"), "symbolic link"});
  fs::remove(path("s.2"));
  fs::create_directory(path("s.2"));
  expect_error(read, {path("s.2")});
}

TEST_F(Chain, AParentOfAnotherModuleOrShapeIsRefused) {
  Snapshot root = with_pages({1, 2});
  static const std::vector<uint8_t> other_module = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x01};
  root.module.binary = {other_module, nullptr};
  ParentRef p1 = write("s.1", root);
  write("s.2", with_pages({1, 2}), &p1, {false, true}, 2);
  expect_error([&] { snapshot::read_snapshot_chain(path("s.2"), {}, {}); },
               {"s.1", "another module"});

  ParentRef big = write("big", with_pages({1, 2, 3}));
  // The child claims the parent had 2 pages; the parent has 3.
  write("small", with_pages({1, 2}), &big, {false, true}, 2);
  expect_error([&] { snapshot::read_snapshot_chain(path("small"), {}, {}); },
               {"big", "does not fit"});
}

TEST_F(Chain, ALoopOfParentsEnds) {
  // a names b and b names a (hashes cannot both be right; the loop is
  // found before any hash is checked).
  ParentRef fake{"b", 0, {}};
  write("a", with_pages({1}), &fake, {}, 1);
  ParentRef a = {"a", fs::file_size(path("a")), {}};
  write("b", with_pages({1}), &a, {}, 1);
  // a's recorded size of b must match for the walk to get that far.
  fake.size = fs::file_size(path("b"));
  write("a", with_pages({1}), &fake, {}, 1);
  a.size = fs::file_size(path("a"));
  write("b", with_pages({1}), &a, {}, 1);
  expect_error([&] { snapshot::read_snapshot_chain(path("a"), {}, {}); }, {"leads back to"});
}

TEST(IncrementalFormat, ParentNamesAreFileNamesOnly) {
  for (const char* name : {"../s.1", "/etc/passwd", "dir/s.1", ".", "..", ""}) {
    EXPECT_FALSE(snapshot::is_plain_file_name(name)) << name;
    Snapshot s = with_pages({1});
    s.parent = ParentRef{name, 1, {}};
    EXPECT_THROW(to_bytes(s, carrying(s, {true}, 1)), Error) << name;
    // And a reader refuses it even when a writer did not check.
    const auto payload = SpecBytes().str(name).u64(1).raw(std::vector<uint8_t>(32)).b;
    const auto bytes = SpecStream(2)
                           .section("MODL", SpecBytes().raw(std::vector<uint8_t>(32)).u64(0).b)
                           .section("PRNT", payload)
                           .section("GLOB", SpecBytes().u32(0).b)
                           .section("SEGS", SpecBytes().u32(0).u32(0).b)
                           .finish();
    expect_error([&] { from_bytes(bytes); }, {"not a plain file name"});
  }
  EXPECT_TRUE(snapshot::is_plain_file_name("s.17"));
}

TEST(IncrementalFormat, VersionAndParentGoTogether) {
  const auto modl = SpecBytes().raw(std::vector<uint8_t>(32)).u64(0).b;
  const auto prnt = SpecBytes().str("p").u64(1).raw(std::vector<uint8_t>(32)).b;
  const auto glob = SpecBytes().u32(0).b;
  const auto segs = SpecBytes().u32(0).u32(0).b;
  expect_error(
      [&] {
        from_bytes(SpecStream(1)
                       .section("MODL", modl)
                       .section("PRNT", prnt)
                       .section("GLOB", glob)
                       .section("SEGS", segs)
                       .finish());
      },
      {"version 1 snapshot cannot have a parent"});
  expect_error([&] { from_bytes(SpecStream(2).minimal_instance().finish()); },
               {"without a PRNT section"});
  expect_error(
      [&] {
        from_bytes(SpecStream(2)
                       .section("MODL", modl)
                       .section("GLOB", glob)
                       .section("PRNT", prnt)
                       .section("SEGS", segs)
                       .finish());
      },
      {"PRNT", "out of order"});
  EXPECT_NO_THROW(from_bytes(SpecStream(2)
                                 .section("MODL", modl)
                                 .section("PRNT", prnt)
                                 .section("GLOB", glob)
                                 .section("SEGS", segs)
                                 .finish()));
}

TEST(IncrementalFormat, WriterRefusesAHalfIncrementalSnapshot) {
  Snapshot s = with_pages({1, 2});
  s.parent = ParentRef{"p", 1, {}};
  EXPECT_THROW(to_bytes(s), Error); // a parent, no pages to carry
  snapshot::WriteOptions options;
  options.carried_pages = {std::vector<bool>{true, false, false}};
  EXPECT_THROW(to_bytes(s, options), Error); // flags for more pages than the memory has
  options.carried_pages = {std::vector<bool>{true, false}};
  EXPECT_NO_THROW(to_bytes(s, options));
}

} // namespace
} // namespace tern::test
