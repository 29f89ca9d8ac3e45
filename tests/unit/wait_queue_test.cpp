// The runtime's atomic accesses (little-endian bytes on every host) and the
// wait queues of memory.atomic.wait/notify: order, timeouts, the value
// check against concurrent notifies, checkpoint interruption, and what a
// checkpoint would record.
#include "runtime/atomics.h"
#include "runtime/interrupt.h"
#include "runtime/memory.h"
#include "runtime/wait_queue.h"
#include "tern/error.h"
#include "tern/internal_error.h"

#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <thread>
#include <vector>

namespace tern::runtime {
namespace {

using namespace std::chrono_literals;
using Outcome = WaitQueues::Outcome;

wasm::MemoryType shared_type() {
  wasm::MemoryType t;
  t.limits.min = 1;
  t.limits.max = 1;
  t.limits.shared = true;
  return t;
}

TEST(Atomics, LittleEndianBytesOnEveryHost) {
  alignas(8) uint8_t bytes[8] = {};
  atomics::store<uint32_t>(bytes, 0x11223344u);
  EXPECT_EQ(bytes[0], 0x44);
  EXPECT_EQ(bytes[3], 0x11);
  EXPECT_EQ(atomics::load<uint32_t>(bytes), 0x11223344u);
  EXPECT_EQ(atomics::rmw<uint32_t>(atomics::RmwOp::Add, bytes, 0x10u), 0x11223344u);
  EXPECT_EQ(bytes[0], 0x54);
  EXPECT_EQ(atomics::rmw<uint16_t>(atomics::RmwOp::Sub, bytes, 0x55u), 0x3354u);
  EXPECT_EQ(atomics::load<uint16_t>(bytes), 0x32FFu);
  EXPECT_EQ(atomics::rmw<uint8_t>(atomics::RmwOp::Xchg, bytes, 0xAAu), 0xFFu);
  EXPECT_EQ(atomics::cmpxchg<uint64_t>(bytes, 0, 1), 0x112232AAull);
  EXPECT_EQ(atomics::cmpxchg<uint64_t>(bytes, 0x112232AAull, 0x0102030405060708ull), 0x112232AAull);
  EXPECT_EQ(bytes[0], 0x08);
  EXPECT_EQ(bytes[7], 0x01);
  EXPECT_EQ(atomics::rmw<uint64_t>(atomics::RmwOp::Or, bytes, 0xF0ull << 56),
            0x0102030405060708ull);
  EXPECT_EQ(bytes[7], 0xF1);
}

TEST(Atomics, AddsFromManyThreadsAreNotLost) {
  alignas(8) uint8_t bytes[8] = {};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int k = 0; k < 10000; ++k) atomics::rmw<uint64_t>(atomics::RmwOp::Add, bytes, 1);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(atomics::load<uint64_t>(bytes), 40000u);
}

TEST(WaitQueues, SharedMemoriesHaveThem) {
  Memory shared(shared_type());
  EXPECT_NE(shared.wait_queues(), nullptr);
  wasm::MemoryType plain;
  plain.limits.min = 1;
  Memory unshared(plain);
  EXPECT_EQ(unshared.wait_queues(), nullptr);
}

TEST(WaitQueues, NotEqualAndTimeout) {
  Memory mem(shared_type());
  WaitQueues& q = *mem.wait_queues();
  atomics::store<uint32_t>(mem.base() + 8, 5);
  EXPECT_EQ(q.wait(8, mem.base() + 8, 4, 6, -1, {}).outcome, Outcome::NotEqual);
  EXPECT_EQ(q.wait(8, mem.base() + 8, 4, 5, 0, {}).outcome, Outcome::TimedOut);
  EXPECT_EQ(q.wait(8, mem.base() + 8, 4, 5, 1000000, {}).outcome, Outcome::TimedOut);
  atomics::store<uint64_t>(mem.base() + 16, 0x100000005ull);
  EXPECT_EQ(q.wait(16, mem.base() + 16, 8, 5, 0, {}).outcome, Outcome::NotEqual);
  EXPECT_EQ(q.notify(8, 10), 0u);
  EXPECT_EQ(q.waiting_at(8), 0u);
}

// Waits for `n` waiters at `addr` to be queued.
void await_waiters(const WaitQueues& q, uint64_t addr, size_t n) {
  while (q.waiting_at(addr) < n) std::this_thread::sleep_for(1ms);
}

TEST(WaitQueues, NotifyWakesTheOldestFirst) {
  Memory mem(shared_type());
  WaitQueues& q = *mem.wait_queues();
  std::vector<int> order;
  std::mutex order_mutex;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&, i] {
      auto r = q.wait(0, mem.base(), 4, 0, -1, {uint64_t(i), -1});
      EXPECT_EQ(r.outcome, Outcome::Woken);
      std::lock_guard lock(order_mutex);
      order.push_back(i);
    });
    await_waiters(q, 0, size_t(i) + 1); // queued in this order
  }
  auto state = q.capture();
  ASSERT_EQ(state.queues.size(), 1u);
  ASSERT_EQ(state.queues[0].waiters.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(state.queues[0].waiters[i].thread_id, i);
    EXPECT_FALSE(state.queues[0].waiters[i].remaining_ns);
  }
  EXPECT_EQ(q.notify(0, 1), 1u);
  waiters[0].join();
  EXPECT_EQ(q.waiting_at(0), 2u);
  EXPECT_EQ(q.notify(0, 5), 2u);
  waiters[1].join();
  waiters[2].join();
  EXPECT_EQ(order.front(), 0);
  EXPECT_EQ(q.waiting_at(0), 0u);
}

TEST(WaitQueues, CheckpointRequestInterruptsWithTheTimeLeft) {
  Memory mem(shared_type());
  WaitQueues& q = *mem.wait_queues();
  Interrupt interrupt;
  WaitQueues::WaitResult result;
  std::thread waiter([&] {
    result = q.wait(4, mem.base() + 4, 4, 0, int64_t(60e9), {7, interrupt.fd()});
  });
  await_waiters(q, 4, 1);
  auto state = q.capture();
  ASSERT_EQ(state.queues.size(), 1u);
  EXPECT_EQ(state.queues[0].addr, 4u);
  EXPECT_EQ(state.queues[0].waiters[0].thread_id, 7u);
  ASSERT_TRUE(state.queues[0].waiters[0].remaining_ns);
  EXPECT_GT(*state.queues[0].waiters[0].remaining_ns, 0);
  interrupt.request();
  waiter.join();
  EXPECT_EQ(result.outcome, Outcome::Interrupted);
  ASSERT_TRUE(result.remaining_ns);
  EXPECT_LE(*result.remaining_ns, int64_t(60e9));
  EXPECT_GT(*result.remaining_ns, 0);
  EXPECT_EQ(q.waiting_at(4), 1u); // parked: it keeps its place
  interrupt.clear();
  // Issued again, the wait takes up its place without looking at the value.
  atomics::store<uint32_t>(mem.base() + 4, 99);
  std::thread again([&] {
    result = q.wait(4, mem.base() + 4, 4, 0, int64_t(60e9), {7, interrupt.fd()});
  });
  while (q.capture().queues.empty() || q.waiting_at(4) != 1) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(q.notify(4, 1), 1u);
  again.join();
  EXPECT_EQ(result.outcome, Outcome::Woken);
  EXPECT_TRUE(q.capture().empty());
}

// A waiter interrupted by a checkpoint request, then notified before it
// issues its wait again: the wait returns "ok" (no lost wakeup), and a
// checkpoint in between records it as notified.
TEST(WaitQueues, NotifyWhileParkedIsKept) {
  Memory mem(shared_type());
  WaitQueues& q = *mem.wait_queues();
  Interrupt interrupt;
  interrupt.request();
  auto r = q.wait(8, mem.base() + 8, 4, 0, -1, {3, interrupt.fd()});
  EXPECT_EQ(r.outcome, Outcome::Interrupted);
  EXPECT_FALSE(r.remaining_ns);
  EXPECT_EQ(q.notify(8, 1), 1u);
  auto state = q.capture();
  EXPECT_TRUE(state.queues.empty());
  ASSERT_EQ(state.woken.size(), 1u);
  EXPECT_EQ(state.woken[0], (WaitQueues::WokenRecord{3, 8}));
  interrupt.clear();
  EXPECT_EQ(q.wait(8, mem.base() + 8, 4, 0, -1, {3, interrupt.fd()}).outcome, Outcome::Woken);
  EXPECT_TRUE(q.capture().empty());
}

// What capture() recorded, put back into other queues: the same order,
// deadlines, notified waiters; each thread resumes its own wait.
TEST(WaitQueues, RestoreRebuildsOrderAndWakesOnlyTheNotified) {
  WaitQueues::State state;
  state.queues.push_back({16, {{5, std::nullopt}, {2, int64_t(60e9)}, {9, int64_t(0)}}});
  state.woken.push_back({4, 16});
  Memory mem(shared_type());
  WaitQueues& q = *mem.wait_queues();
  q.restore(state);
  auto again = q.capture();
  ASSERT_EQ(again.queues.size(), 1u);
  ASSERT_EQ(again.queues[0].waiters.size(), 3u);
  EXPECT_EQ(again.queues[0].waiters[0].thread_id, 5u);
  EXPECT_FALSE(again.queues[0].waiters[0].remaining_ns);
  EXPECT_EQ(again.queues[0].waiters[1].thread_id, 2u);
  EXPECT_GT(*again.queues[0].waiters[1].remaining_ns, int64_t(50e9));
  EXPECT_EQ(again.woken, state.woken);
  EXPECT_THROW(q.restore(state), InternalError); // over live waiters: a bug

  Interrupt interrupt;                          // never requested
  atomics::store<uint32_t>(mem.base() + 16, 1); // the value is not looked at again
  EXPECT_EQ(q.wait(16, mem.base() + 16, 4, 0, -1, {4, interrupt.fd()}).outcome, Outcome::Woken);
  EXPECT_EQ(q.wait(16, mem.base() + 16, 4, 0, -1, {9, interrupt.fd()}).outcome,
            Outcome::TimedOut); // no time left
  EXPECT_THROW(q.wait(20, mem.base() + 20, 4, 0, -1, {5, interrupt.fd()}), Error);
  WaitQueues::WaitResult first, second;
  std::thread t5([&] { first = q.wait(16, mem.base() + 16, 4, 0, -1, {5, interrupt.fd()}); });
  std::thread t2([&] { second = q.wait(16, mem.base() + 16, 4, 0, -1, {2, interrupt.fd()}); });
  EXPECT_EQ(q.notify(16, 1), 1u); // the oldest: thread 5, whether it runs yet or not
  t5.join();
  EXPECT_EQ(first.outcome, Outcome::Woken);
  EXPECT_EQ(q.waiting_at(16), 1u);
  EXPECT_EQ(q.notify(16, 1), 1u);
  t2.join();
  EXPECT_EQ(second.outcome, Outcome::Woken);
  EXPECT_TRUE(q.capture().empty());
}

TEST(WaitQueues, RestoreRefusesAThreadTwice) {
  WaitQueues::State state;
  state.queues.push_back({0, {{1, std::nullopt}}});
  state.woken.push_back({1, 4});
  Memory mem(shared_type());
  EXPECT_THROW(mem.wait_queues()->restore(state), Error);
}

TEST(WaitQueues, NoWakeupIsLostAgainstAConcurrentStore) {
  // A waiter checks the value under the queue lock: a notify after the
  // store is either seen by the check (not-equal) or wakes the waiter.
  Memory mem(shared_type());
  WaitQueues& q = *mem.wait_queues();
  for (int round = 0; round < 200; ++round) {
    atomics::store<uint32_t>(mem.base(), 0);
    std::thread waiter([&] { q.wait(0, mem.base(), 4, 0, -1, {}); });
    atomics::store<uint32_t>(mem.base(), 1);
    q.notify(0, 1); // the waiter is queued (and woken) or will see 1
    waiter.join();
  }
  SUCCEED();
}

} // namespace
} // namespace tern::runtime
