// The fd table: numbering, rights checks, renumber and close.
#include "wasi/fd_table.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace tern::wasi {
namespace {

FdEntry entry_with(Rights rights) {
  FdEntry e;
  e.kind = FdKind::File;
  e.rights_base = rights;
  e.host.reset(::dup(2)); // any open fd
  return e;
}

TEST(FdTable, LowestFreeNumberFirst) {
  FdTable t;
  t.insert_at(0, entry_with(0));
  t.insert_at(3, entry_with(0));
  uint32_t fd = 99;
  ASSERT_EQ(t.insert(entry_with(0), fd), Errno::success);
  EXPECT_EQ(fd, 1u);
  ASSERT_EQ(t.insert(entry_with(0), fd), Errno::success);
  EXPECT_EQ(fd, 2u);
  ASSERT_EQ(t.insert(entry_with(0), fd), Errno::success);
  EXPECT_EQ(fd, 4u);
  ASSERT_EQ(t.close(1), Errno::success);
  ASSERT_EQ(t.insert(entry_with(0), fd), Errno::success);
  EXPECT_EQ(fd, 1u);
  EXPECT_EQ(t.open_fds(), (std::vector<uint32_t>{0, 1, 2, 3, 4}));
}

TEST(FdTable, RightsAndMissingFds) {
  FdTable t;
  t.insert_at(5, entry_with(right::fd_read | right::fd_seek));
  FdEntry* e = nullptr;
  EXPECT_EQ(t.get(5, right::fd_read, e), Errno::success);
  EXPECT_NE(e, nullptr);
  EXPECT_EQ(t.get(5, right::fd_read | right::fd_write, e), Errno::notcapable);
  EXPECT_EQ(t.get(4, 0, e), Errno::badf);
  EXPECT_EQ(t.get(1u << 30, 0, e), Errno::badf);
  EXPECT_EQ(t.close(4), Errno::badf);
}

TEST(FdTable, RenumberReplacesTheTarget) {
  FdTable t;
  t.insert_at(3, entry_with(right::fd_read));
  t.insert_at(4, entry_with(right::fd_write));
  int host3 = t.find(3)->host.get();
  EXPECT_EQ(t.renumber(3, 9), Errno::badf) << "the target must be open";
  ASSERT_EQ(t.renumber(3, 4), Errno::success);
  EXPECT_EQ(t.find(3), nullptr);
  ASSERT_NE(t.find(4), nullptr);
  EXPECT_EQ(t.find(4)->host.get(), host3);
  EXPECT_EQ(t.find(4)->rights_base, right::fd_read);
  EXPECT_EQ(t.renumber(4, 4), Errno::success);
  uint32_t fd = 0;
  ASSERT_EQ(t.insert(entry_with(0), fd), Errno::success);
  EXPECT_EQ(fd, 0u);
}

} // namespace
} // namespace tern::wasi
