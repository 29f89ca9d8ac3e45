// The threads proposal's atomic accesses to linear memory, for the
// interpreter and for compiled code's helpers: sequentially consistent
// (the proposal's only ordering), on the little-endian bytes of wasm memory
// on every host. On a big-endian host (s390x) values are byte-swapped around
// the hardware atomic; and, or, xor and xchg commute with the swap, add and
// sub do not and run as a compare-and-swap loop on the swapped value.
//
// Callers check bounds and alignment first (`aligned` below): std::atomic_ref
// requires an address aligned to the access size.
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <type_traits>

namespace tern::runtime::atomics {

enum class RmwOp : uint8_t { Add, Sub, And, Or, Xor, Xchg };

template <typename T>
inline constexpr bool kAccessType = std::is_same_v<T, uint8_t> || std::is_same_v<T, uint16_t> ||
                                    std::is_same_v<T, uint32_t> || std::is_same_v<T, uint64_t>;

// Whether an access of `bytes` (a power of two) at effective address `ea`
// is aligned, as atomics require (else they trap "unaligned atomic").
inline bool aligned(uint64_t ea, uint32_t bytes) {
  return (ea & (bytes - 1)) == 0;
}

namespace detail {
template <typename T>
T to_memory(T v) {
  if constexpr (std::endian::native == std::endian::big && sizeof(T) == 2)
    return static_cast<T>(__builtin_bswap16(v));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) == 4)
    return static_cast<T>(__builtin_bswap32(v));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) == 8)
    return static_cast<T>(__builtin_bswap64(v));
  return v;
}
template <typename T>
std::atomic_ref<T> at(uint8_t* p) {
  return std::atomic_ref<T>(*reinterpret_cast<T*>(p));
}
} // namespace detail

template <typename T>
T load(uint8_t* p) {
  static_assert(kAccessType<T>);
  return detail::to_memory(detail::at<T>(p).load(std::memory_order_seq_cst));
}

template <typename T>
void store(uint8_t* p, T v) {
  static_assert(kAccessType<T>);
  detail::at<T>(p).store(detail::to_memory(v), std::memory_order_seq_cst);
}

// Applies `op` with operand `v`; returns the value before.
template <typename T>
T rmw(RmwOp op, uint8_t* p, T v) {
  static_assert(kAccessType<T>);
  auto a = detail::at<T>(p);
  constexpr auto seq = std::memory_order_seq_cst;
  const T m = detail::to_memory(v);
  switch (op) {
  case RmwOp::And:
    return detail::to_memory(a.fetch_and(m, seq));
  case RmwOp::Or:
    return detail::to_memory(a.fetch_or(m, seq));
  case RmwOp::Xor:
    return detail::to_memory(a.fetch_xor(m, seq));
  case RmwOp::Xchg:
    return detail::to_memory(a.exchange(m, seq));
  case RmwOp::Add:
  case RmwOp::Sub:
    break;
  }
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    return op == RmwOp::Add ? a.fetch_add(v, seq) : a.fetch_sub(v, seq);
  } else {
    T old = a.load(seq);
    for (;;) {
      T value = detail::to_memory(old);
      T next = static_cast<T>(op == RmwOp::Add ? value + v : value - v);
      if (a.compare_exchange_weak(old, detail::to_memory(next), seq, seq)) return value;
    }
  }
}

// Replaces the value with `replacement` if it equals `expected`; returns the
// value before either way.
template <typename T>
T cmpxchg(uint8_t* p, T expected, T replacement) {
  static_assert(kAccessType<T>);
  T old = detail::to_memory(expected);
  detail::at<T>(p).compare_exchange_strong(old, detail::to_memory(replacement),
                                           std::memory_order_seq_cst, std::memory_order_seq_cst);
  return detail::to_memory(old);
}

inline void fence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

} // namespace tern::runtime::atomics
