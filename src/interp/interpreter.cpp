// The interpreter's dispatch loop and its runtime::Engine.
//
// Direct-threaded code (GNU labels as values): every handler reads its
// operands from the words after its own, does its work and jumps straight to
// the next handler. The running frame lives in locals (ip, fp, self); caller
// frames are records on the thread's frame stack, values on its slot stack.
// Memory is accessed little-endian on every host (runtime::Memory::load_le).
#include "interp/code.h"
#include "interp/engine.h"
#include "interp/exec.h"
#include "runtime/atomics.h"
#include "runtime/instance.h"
#include "runtime/store.h"
#include "runtime/thread.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <limits>

namespace tern::interp {

using runtime::ExecOutcome;
using runtime::Frame;
using runtime::FunctionInstance;
using runtime::Memory;
using runtime::ModuleInstance;
using runtime::Slot;
using runtime::TrapKind;

namespace {

// --- Value conversions between slots and C++ types -------------------------

inline float f32_of(uint64_t s) {
  return std::bit_cast<float>(static_cast<uint32_t>(s));
}
inline double f64_of(uint64_t s) {
  return std::bit_cast<double>(s);
}
inline uint64_t bits_of(float f) {
  return std::bit_cast<uint32_t>(f);
}
inline uint64_t bits_of(double d) {
  return std::bit_cast<uint64_t>(d);
}

// --- Float semantics the spec fixes more tightly than C++ ------------------

template <typename F>
F wasm_min(F a, F b) {
  if (std::isnan(a) || std::isnan(b)) return a + b; // a NaN operand propagates (quieted)
  if (a == b) return std::signbit(a) ? a : b;       // min(-0, +0) = -0
  return a < b ? a : b;
}

template <typename F>
F wasm_max(F a, F b) {
  if (std::isnan(a) || std::isnan(b)) return a + b;
  if (a == b) return std::signbit(a) ? b : a; // max(-0, +0) = +0
  return a > b ? a : b;
}

// Truncation checks: NaN is an invalid conversion, out of range an overflow.
// The bounds are exact powers of two, representable in both float types.
template <typename I, typename F>
bool trunc_in_range(F x) {
  if constexpr (std::is_signed_v<I>) {
    constexpr F lo = static_cast<F>(std::numeric_limits<I>::min()); // -2^(n-1)
    constexpr F hi = -lo;
    // Only f64 can hold values in (-2^31-1, -2^31) that truncate into range.
    if constexpr (sizeof(I) == 4 && sizeof(F) == 8) return x > lo - F(1) && x < hi;
    return x >= lo && x < hi;
  } else {
    constexpr F hi = static_cast<F>(std::numeric_limits<I>::max() / 2 + 1) * F(2); // 2^n
    return x > F(-1) && x < hi;
  }
}

template <typename I, typename F>
I trunc_sat(F x) {
  if (std::isnan(x)) return 0;
  if (!trunc_in_range<I>(x))
    return x < F(0) ? std::numeric_limits<I>::min() : std::numeric_limits<I>::max();
  return static_cast<I>(x);
}

// Rounding and sqrt must turn a signalling NaN into a quiet one; libm's
// floor & co. may hand the operand back unchanged.
template <typename F>
F quiet(F x) {
  return std::isnan(x) ? x + x : x;
}

inline uint32_t f32_abs(uint64_t s) {
  return static_cast<uint32_t>(s) & 0x7FFFFFFFu;
}
inline uint32_t f32_neg(uint64_t s) {
  return static_cast<uint32_t>(s) ^ 0x80000000u;
}
inline uint32_t f32_copysign(uint64_t a, uint64_t b) {
  return (static_cast<uint32_t>(a) & 0x7FFFFFFFu) | (static_cast<uint32_t>(b) & 0x80000000u);
}
inline uint64_t f64_abs(uint64_t s) {
  return s & 0x7FFFFFFFFFFFFFFFull;
}
inline uint64_t f64_neg(uint64_t s) {
  return s ^ 0x8000000000000000ull;
}
inline uint64_t f64_copysign(uint64_t a, uint64_t b) {
  return (a & 0x7FFFFFFFFFFFFFFFull) | (b & 0x8000000000000000ull);
}

// The slow path of a stable point: counts it in counting mode; true when
// the thread must stop here (a checkpoint, or a move to compiled code).
bool stop_here(runtime::Thread& thread, uint32_t flag) {
  if (flag & runtime::Interrupt::kCounting) {
    if (++thread.stable_points == thread.stop_at) return true;
  }
  return (flag & (runtime::Interrupt::kRequested | runtime::Interrupt::kTierUp)) != 0;
}

const CompiledFunction* code_of(const FunctionInstance* f) {
  return static_cast<const CompiledFunction*>(f->code);
}

// Calls a host function whose arguments are in the slots at `args`; its
// results go to the same slots (the arguments are copied out first). The
// thread's stack tops are published so the host may call back into wasm.
runtime::HostStatus call_host(runtime::Thread& thread, ModuleInstance* caller,
                              FunctionInstance* callee, char* fp,
                              const CompiledFunction* frame_code, Frame* fsp, char* args,
                              runtime::HostResult& result) {
  const wasm::FuncType& type = *callee->type;
  Slot inline_args[16];
  std::vector<Slot> heap_args;
  Slot* copy = inline_args;
  if (type.params.size() > 16) {
    heap_args.resize(type.params.size());
    copy = heap_args.data();
  }
  std::copy_n(reinterpret_cast<const Slot*>(args), type.params.size(), copy);
  thread.frame_top = fsp;
  thread.slot_top = reinterpret_cast<Slot*>(fp) + frame_code->frame_slots;
  runtime::CallContext ctx{thread, caller};
  result =
      callee->host->callback(ctx, std::span<const Slot>(copy, type.params.size()),
                             std::span<Slot>(reinterpret_cast<Slot*>(args), type.results.size()));
  return result.status;
}

} // namespace

// Builds a trap with a backtrace from the running frame and its callers.
static runtime::Trap make_trap(TrapKind kind, std::string message, const FunctionInstance* self,
                               const Word* ip, const Frame* frames_end, const Frame* base) {
  runtime::Trap t;
  t.kind = kind;
  t.message = message.empty() ? std::string(runtime::trap_message(kind)) : std::move(message);
  auto add = [&](const FunctionInstance* f, const Word* pc, bool is_return_address) {
    const CompiledFunction* c = code_of(f);
    uint32_t index = c->index_of(pc);
    if (is_return_address && index > 0) --index; // inside the call instruction
    t.backtrace.push_back(
        {f->index, c->wasm_offset_at(index), f->instance->module().func_name(f->index)});
  };
  add(self, ip, false);
  for (const Frame* f = frames_end; f-- > base + 1;)
    add(f->func, static_cast<const Word*>(f->pc), true);
  return t;
}

ExecOutcome execute(runtime::Thread* thread_ptr, const Activation& act) {
  static const void* const kLabels[] = {
#define HANDLER(name) &&L_##name,
#include "interp/handlers.def"
#undef HANDLER
  };
  if (!thread_ptr) { // handler_table() asks for the label addresses
    *act.labels_out = kLabels;
    return ExecOutcome::returned();
  }
  runtime::Thread& thread = *thread_ptr;

  // Machine state. Only what nearly every handler touches is kept in locals
  // (the compiler can then give them registers); the rest lives in `s`,
  // whose address escapes so it stays in memory instead of competing for
  // registers across the slow paths' calls.
  const Word* ip = act.ip;
  char* fp = reinterpret_cast<char*>(act.fp);
  uint8_t* mem_base;
  uint64_t mem_size;
  struct State {
    FunctionInstance* self;
    Frame* fsp;
    Frame* base;
    Frame* frame_limit;
    char* stack_end;
    const std::atomic<uint32_t>* poll;
    ModuleInstance* inst;
    FunctionInstance* const* funcs;
    runtime::GlobalCell* const* globals;
    Memory* mem;
    FunctionInstance* callee; // the call sequence shared by call and call_indirect
    char* call_args;
    const Word* call_next;
    TrapKind trap_kind;
    std::string trap_message;
    runtime::HostResult host_result;
  } state;
  State& s = state;
  s.self = act.func;
  s.fsp = act.frame_top;
  s.base = act.base;
  s.frame_limit = thread.frames_end();
  s.stack_end = reinterpret_cast<char*>(thread.stack_end());
  s.poll = thread.store().interrupt().flag();
  s.trap_kind = TrapKind::Unreachable;
  thread.engine_scratch = &state;

#define SLOT(off) (*reinterpret_cast<Slot*>(fp + (off)))
#define LO(w) static_cast<uint32_t>(w)
#define HI(w) static_cast<uint32_t>((w) >> 32)
#define NEXT() goto * ip->handler
#define DISPATCH(n)                                                                                \
  do {                                                                                             \
    ip += (n);                                                                                     \
    NEXT();                                                                                        \
  } while (0)
#define TRAP(kind)                                                                                 \
  do {                                                                                             \
    s.trap_kind = (kind);                                                                          \
    goto trap;                                                                                     \
  } while (0)
#define RELOAD_MEMORY()                                                                            \
  do {                                                                                             \
    mem_base = s.mem ? s.mem->base() : nullptr;                                                    \
    mem_size = s.mem ? s.mem->size() : 0;                                                          \
  } while (0)
#define RELOAD_INSTANCE()                                                                          \
  do {                                                                                             \
    s.inst = s.self->instance;                                                                     \
    s.funcs = s.inst->funcs.data();                                                                \
    s.globals = s.inst->globals.data();                                                            \
    s.mem = s.inst->memory0();                                                                     \
    RELOAD_MEMORY();                                                                               \
  } while (0)

  RELOAD_INSTANCE();
  NEXT();

  // --- Typed access ---------------------------------------------------------
#define RD_I32(x) static_cast<uint32_t>(x)
#define RD_I64(x) static_cast<uint64_t>(x)
#define RD_F32(x) f32_of(x)
#define RD_F64(x) f64_of(x)
#define RD_RAW(x) static_cast<uint64_t>(x)
#define WR_I32(v) static_cast<uint64_t>(static_cast<uint32_t>(v))
#define WR_I64(v) static_cast<uint64_t>(v)
#define WR_F32(v) bits_of(static_cast<float>(v))
#define WR_F64(v) bits_of(static_cast<double>(v))
#define WR_RAW(v) static_cast<uint64_t>(v)

  // Binary: _ss [d|a][b], _si [d|a][imm]. CHECK may trap (a, b in scope).
#define BINARY(NAME, IN, OUT, CHECK, EXPR)                                                         \
  L_##NAME##_ss : {                                                                                \
    uint64_t w = ip[1].u64;                                                                        \
    auto a = RD_##IN(SLOT(HI(w)));                                                                 \
    auto b = RD_##IN(SLOT(ip[2].u64));                                                             \
    CHECK;                                                                                         \
    SLOT(LO(w)) = WR_##OUT(EXPR);                                                                  \
    DISPATCH(3);                                                                                   \
  }                                                                                                \
  L_##NAME##_si : {                                                                                \
    uint64_t w = ip[1].u64;                                                                        \
    auto a = RD_##IN(SLOT(HI(w)));                                                                 \
    auto b = RD_##IN(ip[2].u64);                                                                   \
    CHECK;                                                                                         \
    SLOT(LO(w)) = WR_##OUT(EXPR);                                                                  \
    DISPATCH(3);                                                                                   \
  }
#define UNARY(NAME, IN, OUT, CHECK, EXPR)                                                          \
  L_##NAME : {                                                                                     \
    uint64_t w = ip[1].u64;                                                                        \
    auto a = RD_##IN(SLOT(HI(w)));                                                                 \
    CHECK;                                                                                         \
    SLOT(LO(w)) = WR_##OUT(EXPR);                                                                  \
    DISPATCH(2);                                                                                   \
  }
#define NO_CHECK (void)0
#define S32(x) static_cast<int32_t>(x)
#define S64(x) static_cast<int64_t>(x)
#define DIV_CHECK(T, MIN)                                                                          \
  if (b == 0) TRAP(TrapKind::IntegerDivideByZero);                                                 \
  if (static_cast<T>(a) == (MIN) && static_cast<T>(b) == -1) TRAP(TrapKind::IntegerOverflow)
#define ZERO_CHECK                                                                                 \
  if (b == 0) TRAP(TrapKind::IntegerDivideByZero)

  // i32
  BINARY(I32Add, I32, I32, NO_CHECK, a + b)
  BINARY(I32Sub, I32, I32, NO_CHECK, a - b)
  BINARY(I32Mul, I32, I32, NO_CHECK, a * b)
  BINARY(I32DivS, I32, I32, DIV_CHECK(int32_t, INT32_MIN), S32(a) / S32(b))
  BINARY(I32DivU, I32, I32, ZERO_CHECK, a / b)
  BINARY(I32RemS, I32, I32, ZERO_CHECK, b == 0xFFFFFFFFu ? 0 : S32(a) % S32(b))
  BINARY(I32RemU, I32, I32, ZERO_CHECK, a % b)
  BINARY(I32And, I32, I32, NO_CHECK, a & b)
  BINARY(I32Or, I32, I32, NO_CHECK, a | b)
  BINARY(I32Xor, I32, I32, NO_CHECK, a ^ b)
  BINARY(I32Shl, I32, I32, NO_CHECK, a << (b & 31))
  BINARY(I32ShrS, I32, I32, NO_CHECK, S32(a) >> (b & 31))
  BINARY(I32ShrU, I32, I32, NO_CHECK, a >> (b & 31))
  BINARY(I32Rotl, I32, I32, NO_CHECK, std::rotl(a, static_cast<int>(b & 31)))
  BINARY(I32Rotr, I32, I32, NO_CHECK, std::rotr(a, static_cast<int>(b & 31)))
  BINARY(I32Eq, I32, I32, NO_CHECK, a == b)
  BINARY(I32Ne, I32, I32, NO_CHECK, a != b)
  BINARY(I32LtS, I32, I32, NO_CHECK, S32(a) < S32(b))
  BINARY(I32LtU, I32, I32, NO_CHECK, a < b)
  BINARY(I32GtS, I32, I32, NO_CHECK, S32(a) > S32(b))
  BINARY(I32GtU, I32, I32, NO_CHECK, a > b)
  BINARY(I32LeS, I32, I32, NO_CHECK, S32(a) <= S32(b))
  BINARY(I32LeU, I32, I32, NO_CHECK, a <= b)
  BINARY(I32GeS, I32, I32, NO_CHECK, S32(a) >= S32(b))
  BINARY(I32GeU, I32, I32, NO_CHECK, a >= b)
  // i64
  BINARY(I64Add, I64, I64, NO_CHECK, a + b)
  BINARY(I64Sub, I64, I64, NO_CHECK, a - b)
  BINARY(I64Mul, I64, I64, NO_CHECK, a * b)
  BINARY(I64DivS, I64, I64, DIV_CHECK(int64_t, INT64_MIN), S64(a) / S64(b))
  BINARY(I64DivU, I64, I64, ZERO_CHECK, a / b)
  BINARY(I64RemS, I64, I64, ZERO_CHECK, b == ~uint64_t(0) ? 0 : S64(a) % S64(b))
  BINARY(I64RemU, I64, I64, ZERO_CHECK, a % b)
  BINARY(I64And, I64, I64, NO_CHECK, a & b)
  BINARY(I64Or, I64, I64, NO_CHECK, a | b)
  BINARY(I64Xor, I64, I64, NO_CHECK, a ^ b)
  BINARY(I64Shl, I64, I64, NO_CHECK, a << (b & 63))
  BINARY(I64ShrS, I64, I64, NO_CHECK, S64(a) >> (b & 63))
  BINARY(I64ShrU, I64, I64, NO_CHECK, a >> (b & 63))
  BINARY(I64Rotl, I64, I64, NO_CHECK, std::rotl(a, static_cast<int>(b & 63)))
  BINARY(I64Rotr, I64, I64, NO_CHECK, std::rotr(a, static_cast<int>(b & 63)))
  BINARY(I64Eq, I64, I32, NO_CHECK, a == b)
  BINARY(I64Ne, I64, I32, NO_CHECK, a != b)
  BINARY(I64LtS, I64, I32, NO_CHECK, S64(a) < S64(b))
  BINARY(I64LtU, I64, I32, NO_CHECK, a < b)
  BINARY(I64GtS, I64, I32, NO_CHECK, S64(a) > S64(b))
  BINARY(I64GtU, I64, I32, NO_CHECK, a > b)
  BINARY(I64LeS, I64, I32, NO_CHECK, S64(a) <= S64(b))
  BINARY(I64LeU, I64, I32, NO_CHECK, a <= b)
  BINARY(I64GeS, I64, I32, NO_CHECK, S64(a) >= S64(b))
  BINARY(I64GeU, I64, I32, NO_CHECK, a >= b)
  // f32
  BINARY(F32Add, F32, F32, NO_CHECK, a + b)
  BINARY(F32Sub, F32, F32, NO_CHECK, a - b)
  BINARY(F32Mul, F32, F32, NO_CHECK, a * b)
  BINARY(F32Div, F32, F32, NO_CHECK, a / b)
  BINARY(F32Min, F32, F32, NO_CHECK, wasm_min(a, b))
  BINARY(F32Max, F32, F32, NO_CHECK, wasm_max(a, b))
  BINARY(F32Copysign, RAW, RAW, NO_CHECK, f32_copysign(a, b))
  BINARY(F32Eq, F32, I32, NO_CHECK, a == b)
  BINARY(F32Ne, F32, I32, NO_CHECK, a != b)
  BINARY(F32Lt, F32, I32, NO_CHECK, a < b)
  BINARY(F32Gt, F32, I32, NO_CHECK, a > b)
  BINARY(F32Le, F32, I32, NO_CHECK, a <= b)
  BINARY(F32Ge, F32, I32, NO_CHECK, a >= b)
  // f64
  BINARY(F64Add, F64, F64, NO_CHECK, a + b)
  BINARY(F64Sub, F64, F64, NO_CHECK, a - b)
  BINARY(F64Mul, F64, F64, NO_CHECK, a * b)
  BINARY(F64Div, F64, F64, NO_CHECK, a / b)
  BINARY(F64Min, F64, F64, NO_CHECK, wasm_min(a, b))
  BINARY(F64Max, F64, F64, NO_CHECK, wasm_max(a, b))
  BINARY(F64Copysign, RAW, RAW, NO_CHECK, f64_copysign(a, b))
  BINARY(F64Eq, F64, I32, NO_CHECK, a == b)
  BINARY(F64Ne, F64, I32, NO_CHECK, a != b)
  BINARY(F64Lt, F64, I32, NO_CHECK, a < b)
  BINARY(F64Gt, F64, I32, NO_CHECK, a > b)
  BINARY(F64Le, F64, I32, NO_CHECK, a <= b)
  BINARY(F64Ge, F64, I32, NO_CHECK, a >= b)

  // Unary: [d|a]
  UNARY(I32Eqz, I32, I32, NO_CHECK, a == 0)
  UNARY(I32Clz, I32, I32, NO_CHECK, std::countl_zero(a))
  UNARY(I32Ctz, I32, I32, NO_CHECK, std::countr_zero(a))
  UNARY(I32Popcnt, I32, I32, NO_CHECK, std::popcount(a))
  UNARY(I64Eqz, I64, I32, NO_CHECK, a == 0)
  UNARY(I64Clz, I64, I64, NO_CHECK, std::countl_zero(a))
  UNARY(I64Ctz, I64, I64, NO_CHECK, std::countr_zero(a))
  UNARY(I64Popcnt, I64, I64, NO_CHECK, std::popcount(a))
  UNARY(F32Abs, RAW, RAW, NO_CHECK, f32_abs(a))
  UNARY(F32Neg, RAW, RAW, NO_CHECK, f32_neg(a))
  UNARY(F32Ceil, F32, F32, NO_CHECK, quiet(std::ceil(a)))
  UNARY(F32Floor, F32, F32, NO_CHECK, quiet(std::floor(a)))
  UNARY(F32Trunc, F32, F32, NO_CHECK, quiet(std::trunc(a)))
  UNARY(F32Nearest, F32, F32, NO_CHECK, quiet(std::nearbyint(a)))
  UNARY(F32Sqrt, F32, F32, NO_CHECK, quiet(std::sqrt(a)))
  UNARY(F64Abs, RAW, RAW, NO_CHECK, f64_abs(a))
  UNARY(F64Neg, RAW, RAW, NO_CHECK, f64_neg(a))
  UNARY(F64Ceil, F64, F64, NO_CHECK, quiet(std::ceil(a)))
  UNARY(F64Floor, F64, F64, NO_CHECK, quiet(std::floor(a)))
  UNARY(F64Trunc, F64, F64, NO_CHECK, quiet(std::trunc(a)))
  UNARY(F64Nearest, F64, F64, NO_CHECK, quiet(std::nearbyint(a)))
  UNARY(F64Sqrt, F64, F64, NO_CHECK, quiet(std::sqrt(a)))
  UNARY(I32WrapI64, I64, I32, NO_CHECK, a)
#define TRUNC_CHECK(I)                                                                             \
  if (std::isnan(a)) TRAP(TrapKind::InvalidConversion);                                            \
  if (!trunc_in_range<I>(a)) TRAP(TrapKind::IntegerOverflow)
  UNARY(I32TruncF32S, F32, I32, TRUNC_CHECK(int32_t), static_cast<int32_t>(a))
  UNARY(I32TruncF32U, F32, I32, TRUNC_CHECK(uint32_t), static_cast<uint32_t>(a))
  UNARY(I32TruncF64S, F64, I32, TRUNC_CHECK(int32_t), static_cast<int32_t>(a))
  UNARY(I32TruncF64U, F64, I32, TRUNC_CHECK(uint32_t), static_cast<uint32_t>(a))
  UNARY(I64ExtendI32S, I32, I64, NO_CHECK, static_cast<int64_t>(S32(a)))
  UNARY(I64ExtendI32U, I32, I64, NO_CHECK, a)
  UNARY(I64TruncF32S, F32, I64, TRUNC_CHECK(int64_t), static_cast<int64_t>(a))
  UNARY(I64TruncF32U, F32, I64, TRUNC_CHECK(uint64_t), static_cast<uint64_t>(a))
  UNARY(I64TruncF64S, F64, I64, TRUNC_CHECK(int64_t), static_cast<int64_t>(a))
  UNARY(I64TruncF64U, F64, I64, TRUNC_CHECK(uint64_t), static_cast<uint64_t>(a))
  UNARY(F32ConvertI32S, I32, F32, NO_CHECK, static_cast<float>(S32(a)))
  UNARY(F32ConvertI32U, I32, F32, NO_CHECK, static_cast<float>(a))
  UNARY(F32ConvertI64S, I64, F32, NO_CHECK, static_cast<float>(S64(a)))
  UNARY(F32ConvertI64U, I64, F32, NO_CHECK, static_cast<float>(a))
  UNARY(F32DemoteF64, F64, F32, NO_CHECK, static_cast<float>(a))
  UNARY(F64ConvertI32S, I32, F64, NO_CHECK, static_cast<double>(S32(a)))
  UNARY(F64ConvertI32U, I32, F64, NO_CHECK, static_cast<double>(a))
  UNARY(F64ConvertI64S, I64, F64, NO_CHECK, static_cast<double>(S64(a)))
  UNARY(F64ConvertI64U, I64, F64, NO_CHECK, static_cast<double>(a))
  UNARY(F64PromoteF32, F32, F64, NO_CHECK, static_cast<double>(a))
  UNARY(I32ReinterpretF32, I32, I32, NO_CHECK, a)
  UNARY(I64ReinterpretF64, I64, I64, NO_CHECK, a)
  UNARY(F32ReinterpretI32, I32, I32, NO_CHECK, a)
  UNARY(F64ReinterpretI64, I64, I64, NO_CHECK, a)
  UNARY(I32Extend8S, I32, I32, NO_CHECK, static_cast<int32_t>(static_cast<int8_t>(a)))
  UNARY(I32Extend16S, I32, I32, NO_CHECK, static_cast<int32_t>(static_cast<int16_t>(a)))
  UNARY(I64Extend8S, I64, I64, NO_CHECK, static_cast<int64_t>(static_cast<int8_t>(a)))
  UNARY(I64Extend16S, I64, I64, NO_CHECK, static_cast<int64_t>(static_cast<int16_t>(a)))
  UNARY(I64Extend32S, I64, I64, NO_CHECK, static_cast<int64_t>(static_cast<int32_t>(a)))
  UNARY(I32TruncSatF32S, F32, I32, NO_CHECK, trunc_sat<int32_t>(a))
  UNARY(I32TruncSatF32U, F32, I32, NO_CHECK, trunc_sat<uint32_t>(a))
  UNARY(I32TruncSatF64S, F64, I32, NO_CHECK, trunc_sat<int32_t>(a))
  UNARY(I32TruncSatF64U, F64, I32, NO_CHECK, trunc_sat<uint32_t>(a))
  UNARY(I64TruncSatF32S, F32, I64, NO_CHECK, trunc_sat<int64_t>(a))
  UNARY(I64TruncSatF32U, F32, I64, NO_CHECK, trunc_sat<uint64_t>(a))
  UNARY(I64TruncSatF64S, F64, I64, NO_CHECK, trunc_sat<int64_t>(a))
  UNARY(I64TruncSatF64U, F64, I64, NO_CHECK, trunc_sat<uint64_t>(a))

  // Loads [d|addr][offset] and stores [addr|value][offset]. The effective
  // address is 33 bits at most, so the sum cannot wrap.
#define EFFECTIVE(addr_slot, size)                                                                 \
  uint64_t ea = uint64_t(static_cast<uint32_t>(SLOT(addr_slot))) + ip[2].u64;                      \
  if (ea + (size) > mem_size) TRAP(TrapKind::MemoryOutOfBounds)
#define LOAD(NAME, T, CONV)                                                                        \
  L_##NAME : {                                                                                     \
    uint64_t w = ip[1].u64;                                                                        \
    EFFECTIVE(HI(w), sizeof(T));                                                                   \
    SLOT(LO(w)) = CONV(Memory::load_le<T>(mem_base + ea));                                         \
    DISPATCH(3);                                                                                   \
  }                                                                                                \
  L_##NAME##_add_ss : {                                                                            \
    uint64_t w = ip[1].u64;                                                                        \
    uint32_t addr = static_cast<uint32_t>(SLOT(HI(w))) + static_cast<uint32_t>(SLOT(ip[2].u64));   \
    uint64_t ea = uint64_t(addr) + ip[3].u64;                                                      \
    if (ea + sizeof(T) > mem_size) TRAP(TrapKind::MemoryOutOfBounds);                              \
    SLOT(LO(w)) = CONV(Memory::load_le<T>(mem_base + ea));                                         \
    DISPATCH(4);                                                                                   \
  }                                                                                                \
  L_##NAME##_abs : {                                                                               \
    uint64_t ea = ip[2].u64;                                                                       \
    if (ea + sizeof(T) > mem_size) TRAP(TrapKind::MemoryOutOfBounds);                              \
    SLOT(ip[1].u64) = CONV(Memory::load_le<T>(mem_base + ea));                                     \
    DISPATCH(3);                                                                                   \
  }                                                                                                \
  L_##NAME##_add_si : {                                                                            \
    uint64_t w = ip[1].u64;                                                                        \
    uint32_t addr = static_cast<uint32_t>(SLOT(HI(w))) + static_cast<uint32_t>(ip[2].u64);         \
    uint64_t ea = uint64_t(addr) + ip[3].u64;                                                      \
    if (ea + sizeof(T) > mem_size) TRAP(TrapKind::MemoryOutOfBounds);                              \
    SLOT(LO(w)) = CONV(Memory::load_le<T>(mem_base + ea));                                         \
    DISPATCH(4);                                                                                   \
  }
#define STORE(NAME, T)                                                                             \
  L_##NAME : {                                                                                     \
    uint64_t w = ip[1].u64;                                                                        \
    EFFECTIVE(LO(w), sizeof(T));                                                                   \
    Memory::store_le<T>(mem_base + ea, static_cast<T>(SLOT(HI(w))));                               \
    DISPATCH(3);                                                                                   \
  }                                                                                                \
  L_##NAME##_abs : {                                                                               \
    uint64_t ea = ip[2].u64;                                                                       \
    if (ea + sizeof(T) > mem_size) TRAP(TrapKind::MemoryOutOfBounds);                              \
    Memory::store_le<T>(mem_base + ea, static_cast<T>(SLOT(ip[1].u64)));                           \
    DISPATCH(3);                                                                                   \
  }
#define ZX(v) static_cast<uint64_t>(v)
#define SX32(v) static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v)))
#define SX64(v) static_cast<uint64_t>(static_cast<int64_t>(v))
  LOAD(I32Load, uint32_t, ZX)
  LOAD(I64Load, uint64_t, ZX)
  LOAD(F32Load, uint32_t, ZX)
  LOAD(F64Load, uint64_t, ZX)
  LOAD(I32Load8S, int8_t, SX32)
  LOAD(I32Load8U, uint8_t, ZX)
  LOAD(I32Load16S, int16_t, SX32)
  LOAD(I32Load16U, uint16_t, ZX)
  LOAD(I64Load8S, int8_t, SX64)
  LOAD(I64Load8U, uint8_t, ZX)
  LOAD(I64Load16S, int16_t, SX64)
  LOAD(I64Load16U, uint16_t, ZX)
  LOAD(I64Load32S, int32_t, SX64)
  LOAD(I64Load32U, uint32_t, ZX)
  STORE(I32Store, uint32_t)
  STORE(I64Store, uint64_t)
  STORE(F32Store, uint32_t)
  STORE(F64Store, uint64_t)
  STORE(I32Store8, uint8_t)
  STORE(I32Store16, uint16_t)
  STORE(I64Store8, uint8_t)
  STORE(I64Store16, uint16_t)
  STORE(I64Store32, uint32_t)

  // Atomic accesses [d|addr] [x|y] [offset] (threads proposal): aligned to
  // their size (checked first, as the reference interpreter does), in
  // bounds, sequentially consistent.
#define ATOMIC_EA(size)                                                                            \
  uint64_t w = ip[1].u64;                                                                          \
  uint64_t xy = ip[2].u64;                                                                         \
  (void)xy;                                                                                        \
  uint64_t ea = uint64_t(static_cast<uint32_t>(SLOT(HI(w)))) + ip[3].u64;                          \
  if (!runtime::atomics::aligned(ea, (size))) TRAP(TrapKind::UnalignedAtomic);                     \
  if (ea + (size) > mem_size) TRAP(TrapKind::MemoryOutOfBounds)
#define ATOMIC_LOAD(NAME, T)                                                                       \
  L_##NAME : {                                                                                     \
    ATOMIC_EA(sizeof(T));                                                                          \
    SLOT(LO(w)) = ZX(runtime::atomics::load<T>(mem_base + ea));                                    \
    DISPATCH(4);                                                                                   \
  }
#define ATOMIC_STORE(NAME, T)                                                                      \
  L_##NAME : {                                                                                     \
    ATOMIC_EA(sizeof(T));                                                                          \
    runtime::atomics::store<T>(mem_base + ea, static_cast<T>(SLOT(LO(xy))));                       \
    DISPATCH(4);                                                                                   \
  }
#define ATOMIC_RMW(NAME, T, OP)                                                                    \
  L_##NAME : {                                                                                     \
    ATOMIC_EA(sizeof(T));                                                                          \
    SLOT(LO(w)) = ZX(runtime::atomics::rmw<T>(runtime::atomics::RmwOp::OP, mem_base + ea,          \
                                              static_cast<T>(SLOT(LO(xy)))));                      \
    DISPATCH(4);                                                                                   \
  }
#define ATOMIC_CMPXCHG(NAME, T)                                                                    \
  L_##NAME : {                                                                                     \
    ATOMIC_EA(sizeof(T));                                                                          \
    SLOT(LO(w)) = ZX(runtime::atomics::cmpxchg<T>(mem_base + ea, static_cast<T>(SLOT(LO(xy))),     \
                                                  static_cast<T>(SLOT(HI(xy)))));                  \
    DISPATCH(4);                                                                                   \
  }
#define ATOMIC_RMW_FAMILY(Op, OP)                                                                  \
  ATOMIC_RMW(I32AtomicRmw##Op, uint32_t, OP)                                                       \
  ATOMIC_RMW(I64AtomicRmw##Op, uint64_t, OP)                                                       \
  ATOMIC_RMW(I32AtomicRmw8##Op##U, uint8_t, OP)                                                    \
  ATOMIC_RMW(I32AtomicRmw16##Op##U, uint16_t, OP)                                                  \
  ATOMIC_RMW(I64AtomicRmw8##Op##U, uint8_t, OP)                                                    \
  ATOMIC_RMW(I64AtomicRmw16##Op##U, uint16_t, OP)                                                  \
  ATOMIC_RMW(I64AtomicRmw32##Op##U, uint32_t, OP)
  ATOMIC_LOAD(I32AtomicLoad, uint32_t)
  ATOMIC_LOAD(I64AtomicLoad, uint64_t)
  ATOMIC_LOAD(I32AtomicLoad8U, uint8_t)
  ATOMIC_LOAD(I32AtomicLoad16U, uint16_t)
  ATOMIC_LOAD(I64AtomicLoad8U, uint8_t)
  ATOMIC_LOAD(I64AtomicLoad16U, uint16_t)
  ATOMIC_LOAD(I64AtomicLoad32U, uint32_t)
  ATOMIC_STORE(I32AtomicStore, uint32_t)
  ATOMIC_STORE(I64AtomicStore, uint64_t)
  ATOMIC_STORE(I32AtomicStore8, uint8_t)
  ATOMIC_STORE(I32AtomicStore16, uint16_t)
  ATOMIC_STORE(I64AtomicStore8, uint8_t)
  ATOMIC_STORE(I64AtomicStore16, uint16_t)
  ATOMIC_STORE(I64AtomicStore32, uint32_t)
  ATOMIC_RMW_FAMILY(Add, Add)
  ATOMIC_RMW_FAMILY(Sub, Sub)
  ATOMIC_RMW_FAMILY(And, And)
  ATOMIC_RMW_FAMILY(Or, Or)
  ATOMIC_RMW_FAMILY(Xor, Xor)
  ATOMIC_RMW_FAMILY(Xchg, Xchg)
  ATOMIC_CMPXCHG(I32AtomicRmwCmpxchg, uint32_t)
  ATOMIC_CMPXCHG(I64AtomicRmwCmpxchg, uint64_t)
  ATOMIC_CMPXCHG(I32AtomicRmw8CmpxchgU, uint8_t)
  ATOMIC_CMPXCHG(I32AtomicRmw16CmpxchgU, uint16_t)
  ATOMIC_CMPXCHG(I64AtomicRmw8CmpxchgU, uint8_t)
  ATOMIC_CMPXCHG(I64AtomicRmw16CmpxchgU, uint16_t)
  ATOMIC_CMPXCHG(I64AtomicRmw32CmpxchgU, uint32_t)
L_MemoryAtomicNotify : {
  ATOMIC_EA(4);
  runtime::WaitQueues* queues = s.mem->wait_queues();
  uint32_t count = static_cast<uint32_t>(SLOT(LO(xy)));
  SLOT(LO(w)) = queues ? queues->notify(ea, count) : 0;
  DISPATCH(4);
}
// Two handlers, not one testing its own address: labels at the same
// place compare equal, which made every wait32 a wait64.
#define ATOMIC_WAIT(wide)                                                                          \
  {                                                                                                \
    ATOMIC_EA(wide ? 8u : 4u);                                                                     \
    runtime::WaitQueues* queues = s.mem->wait_queues();                                            \
    if (!queues) TRAP(TrapKind::ExpectedSharedMemory);                                             \
    uint64_t expected = wide ? SLOT(LO(xy)) : static_cast<uint32_t>(SLOT(LO(xy)));                 \
    int64_t timeout = static_cast<int64_t>(SLOT(HI(xy)));                                          \
    auto r = queues->wait(ea, mem_base + ea, wide ? 8 : 4, expected, timeout,                      \
                          {thread.id, thread.store().interrupt().fd()});                           \
    /* A checkpoint request: stop at the wait, issued again on resume. */                          \
    if (r.outcome == runtime::WaitQueues::Outcome::Interrupted) goto suspend;                      \
    SLOT(LO(w)) = static_cast<uint32_t>(r.outcome);                                                \
    RELOAD_MEMORY(); /* other threads may have grown it meanwhile */                               \
    DISPATCH(4);                                                                                   \
  }
L_MemoryAtomicWait32:
  ATOMIC_WAIT(false)
L_MemoryAtomicWait64:
  ATOMIC_WAIT(true)
#undef ATOMIC_WAIT
L_AtomicFence:
  runtime::atomics::fence();
  DISPATCH(1);

  // A back edge lands just past the loop header's Poll and does its work:
  // a stop is taken at the Poll (ip - 1), exactly as if it had run.
#define BACK_EDGE(target)                                                                          \
  do {                                                                                             \
    ip = (target);                                                                                 \
    if (uint32_t flag = s.poll->load(std::memory_order_relaxed)) [[unlikely]] {                    \
      if (stop_here(thread, flag)) {                                                               \
        ip -= 1;                                                                                   \
        goto suspend;                                                                              \
      }                                                                                            \
    }                                                                                              \
    NEXT();                                                                                        \
  } while (0)
#define FORWARD(target)                                                                            \
  do {                                                                                             \
    ip = (target);                                                                                 \
    NEXT();                                                                                        \
  } while (0)

  // Fused compare-and-branch: _ss [a|b][target], _si [a][imm][target].
#define CMP_BRANCH_AS(NAME, SUFFIX, JUMP, IN, EXPR)                                                \
  L_BrIf##NAME##_ss##SUFFIX : {                                                                    \
    uint64_t w = ip[1].u64;                                                                        \
    auto a = RD_##IN(SLOT(LO(w)));                                                                 \
    auto b = RD_##IN(SLOT(HI(w)));                                                                 \
    if (EXPR) JUMP(ip[2].target);                                                                  \
    DISPATCH(3);                                                                                   \
  }                                                                                                \
  L_BrIf##NAME##_si##SUFFIX : {                                                                    \
    auto a = RD_##IN(SLOT(ip[1].u64));                                                             \
    auto b = RD_##IN(ip[2].u64);                                                                   \
    if (EXPR) JUMP(ip[3].target);                                                                  \
    DISPATCH(4);                                                                                   \
  }
#define CMP_BRANCH(NAME, IN, EXPR)                                                                 \
  CMP_BRANCH_AS(NAME, , FORWARD, IN, EXPR)                                                         \
  CMP_BRANCH_AS(NAME, Loop, BACK_EDGE, IN, EXPR)
#define TERN_COMPARE(op, inverse, mirror, type, condition) CMP_BRANCH(op, type, condition)
#include "interp/compare_branch.def"
#undef TERN_COMPARE

  // --- Control ----------------------------------------------------------------
L_Entry : {
  uint64_t w = ip[1].u64;
  if (fp + ip[2].u64 > s.stack_end) TRAP(TrapKind::CallStackExhausted);
  for (uint32_t i = 0, n = HI(w); i < n; ++i) SLOT(LO(w) + 8 * i) = 0;
  if (uint32_t flag = s.poll->load(std::memory_order_relaxed)) [[unlikely]] {
    if (stop_here(thread, flag)) goto suspend;
  }
  DISPATCH(3);
}
L_Translate:
  // A function's first call (s.self is the callee; its frame is set up).
  ip = translated(*code_of(s.self)).entry();
  NEXT();
L_Poll:
  if (uint32_t flag = s.poll->load(std::memory_order_relaxed)) [[unlikely]] {
    if (stop_here(thread, flag)) goto suspend;
  }
  DISPATCH(1);
L_Unreachable:
  TRAP(TrapKind::Unreachable);
L_Br:
  FORWARD(ip[1].target);
L_BrIfNz:
  if (static_cast<uint32_t>(SLOT(ip[1].u64)) != 0) FORWARD(ip[2].target);
  DISPATCH(3);
L_BrIfZ:
  if (static_cast<uint32_t>(SLOT(ip[1].u64)) == 0) FORWARD(ip[2].target);
  DISPATCH(3);
L_BrLoop:
  BACK_EDGE(ip[1].target);
L_BrIfNzLoop:
  if (static_cast<uint32_t>(SLOT(ip[1].u64)) != 0) BACK_EDGE(ip[2].target);
  DISPATCH(3);
L_BrIfZLoop:
  if (static_cast<uint32_t>(SLOT(ip[1].u64)) == 0) BACK_EDGE(ip[2].target);
  DISPATCH(3);
L_BrTable : {
  uint64_t w = ip[1].u64;
  uint32_t i = static_cast<uint32_t>(SLOT(LO(w)));
  uint32_t n = HI(w);
  ip = ip[2 + (i < n ? i : n)].target;
  NEXT();
}
L_Ret : {
  --s.fsp;
  if (s.fsp == s.base) goto returned;
  ip = static_cast<const Word*>(s.fsp->pc);
  fp = reinterpret_cast<char*>(s.fsp->fp);
  FunctionInstance* caller = s.fsp->func;
  if (caller->instance != s.inst) {
    s.self = caller;
    RELOAD_INSTANCE();
  } else {
    s.self = caller;
    RELOAD_MEMORY(); // the s.callee may have grown memory
  }
  NEXT();
}
L_Call : {
  uint64_t w = ip[1].u64;
  s.callee = s.funcs[LO(w)];
  s.call_args = fp + HI(w);
  s.call_next = ip + 2;
  goto do_call;
}
L_CallIndirect : {
  uint64_t w1 = ip[1].u64;
  uint64_t w2 = ip[2].u64;
  runtime::Table* table = s.inst->tables[HI(w1)];
  uint32_t i = static_cast<uint32_t>(SLOT(LO(w2)));
  if (i >= table->size()) {
    s.trap_message =
        fmt::format("{} {}", runtime::trap_message(TrapKind::IndirectCallOutOfRange), i);
    TRAP(TrapKind::IndirectCallOutOfRange);
  }
  s.callee = runtime::slot_funcref(table->get(i));
  if (!s.callee) {
    s.trap_message = fmt::format("{} {}", runtime::trap_message(TrapKind::IndirectCallNull), i);
    TRAP(TrapKind::IndirectCallNull);
  }
  if (s.callee->type_id != LO(w1)) TRAP(TrapKind::IndirectCallTypeMismatch);
  s.call_args = fp + HI(w2);
  s.call_next = ip + 3;
  goto do_call;
}
do_call:
  if (s.callee->is_host()) {
    switch (call_host(thread, s.inst, s.callee, fp, code_of(s.self), s.fsp, s.call_args,
                      s.host_result)) {
    case runtime::HostStatus::Ok:
      RELOAD_MEMORY();
      ip = s.call_next;
      NEXT();
    case runtime::HostStatus::Trap:
      s.trap_message = std::move(s.host_result.message);
      TRAP(TrapKind::Host);
    case runtime::HostStatus::Exit:
      thread.frame_top = s.base;
      return ExecOutcome::exited(s.host_result.exit_code);
    case runtime::HostStatus::Suspend:
      goto suspend; // ip is still at the call: it is issued again on resume
    }
  }
  if (s.fsp == s.frame_limit) TRAP(TrapKind::CallStackExhausted);
  *s.fsp++ = Frame{s.call_next, reinterpret_cast<Slot*>(fp), s.self};
  fp = s.call_args;
  ip = code_of(s.callee)->entry();
  s.self = s.callee;
  if (s.callee->instance != s.inst) RELOAD_INSTANCE();
  NEXT();
L_Mov : {
  uint64_t w = ip[1].u64;
  SLOT(LO(w)) = SLOT(HI(w));
  DISPATCH(2);
}
L_Mov2 : {
  uint64_t w = ip[1].u64;
  SLOT(LO(w)) = SLOT(HI(w));
  w = ip[2].u64;
  SLOT(LO(w)) = SLOT(HI(w));
  DISPATCH(3);
}
L_Const:
  SLOT(ip[1].u64) = ip[2].u64;
  DISPATCH(3);
L_Select : {
  uint64_t w1 = ip[1].u64;
  uint64_t w2 = ip[2].u64;
  SLOT(LO(w1)) = static_cast<uint32_t>(SLOT(HI(w2))) ? SLOT(HI(w1)) : SLOT(LO(w2));
  DISPATCH(3);
}
L_GlobalGet : {
  uint64_t w = ip[1].u64;
  SLOT(LO(w)) = s.globals[HI(w)]->value;
  DISPATCH(2);
}
L_GlobalSet : {
  uint64_t w = ip[1].u64;
  s.globals[LO(w)]->value = SLOT(HI(w));
  DISPATCH(2);
}

  // --- Memory -----------------------------------------------------------------
L_MemorySize:
  RELOAD_MEMORY(); // a shared memory may have grown in another thread
  SLOT(LO(ip[1].u64)) = mem_size / wasm::kPageSize;
  DISPATCH(2);
L_MemoryGrow : {
  uint64_t w = ip[1].u64;
  int64_t old = s.mem->grow(static_cast<uint32_t>(SLOT(HI(w))));
  RELOAD_MEMORY();
  SLOT(LO(w)) = static_cast<uint32_t>(old);
  DISPATCH(2);
}
L_MemoryFill : {
  uint64_t w = ip[1].u64;
  uint64_t dst = static_cast<uint32_t>(SLOT(LO(w)));
  uint64_t n = static_cast<uint32_t>(SLOT(ip[2].u64));
  if (dst + n > mem_size) TRAP(TrapKind::MemoryOutOfBounds);
  std::memset(mem_base + dst, static_cast<uint8_t>(SLOT(HI(w))), n);
  DISPATCH(3);
}
L_MemoryCopy : {
  uint64_t w = ip[1].u64;
  uint64_t dst = static_cast<uint32_t>(SLOT(LO(w)));
  uint64_t src = static_cast<uint32_t>(SLOT(HI(w)));
  uint64_t n = static_cast<uint32_t>(SLOT(ip[2].u64));
  if (dst + n > mem_size || src + n > mem_size) TRAP(TrapKind::MemoryOutOfBounds);
  std::memmove(mem_base + dst, mem_base + src, n);
  DISPATCH(3);
}
L_MemoryInit : {
  uint64_t w1 = ip[1].u64;
  uint64_t w2 = ip[2].u64;
  uint64_t dst = static_cast<uint32_t>(SLOT(LO(w1)));
  uint64_t src = static_cast<uint32_t>(SLOT(HI(w1)));
  uint64_t n = static_cast<uint32_t>(SLOT(LO(w2)));
  const wasm::Module& m = s.inst->module();
  const wasm::DataSegment& seg = m.datas[HI(w2)];
  uint64_t seg_size = s.inst->data_dropped[HI(w2)] ? 0 : seg.size;
  if (src + n > seg_size || dst + n > mem_size) TRAP(TrapKind::MemoryOutOfBounds);
  if (n) std::memcpy(mem_base + dst, m.bytes.data() + seg.begin + src, n);
  DISPATCH(3);
}
L_DataDrop:
  s.inst->data_dropped[ip[1].u64] = true;
  DISPATCH(2);

  // --- Tables and references -------------------------------------------------
L_TableGet : {
  uint64_t w = ip[1].u64;
  runtime::Table* t = s.inst->tables[ip[2].u64];
  uint32_t i = static_cast<uint32_t>(SLOT(HI(w)));
  if (i >= t->size()) TRAP(TrapKind::TableOutOfBounds);
  SLOT(LO(w)) = t->get(i);
  DISPATCH(3);
}
L_TableSet : {
  uint64_t w = ip[1].u64;
  runtime::Table* t = s.inst->tables[ip[2].u64];
  uint32_t i = static_cast<uint32_t>(SLOT(LO(w)));
  if (i >= t->size()) TRAP(TrapKind::TableOutOfBounds);
  t->set(i, SLOT(HI(w)));
  DISPATCH(3);
}
L_TableSize : {
  uint64_t w = ip[1].u64;
  SLOT(LO(w)) = s.inst->tables[HI(w)]->size();
  DISPATCH(2);
}
L_TableGrow : {
  uint64_t w1 = ip[1].u64;
  uint64_t w2 = ip[2].u64;
  int64_t old = s.inst->tables[HI(w2)]->grow(static_cast<uint32_t>(SLOT(LO(w2))), SLOT(HI(w1)));
  SLOT(LO(w1)) = static_cast<uint32_t>(old);
  DISPATCH(3);
}
L_TableFill : {
  uint64_t w1 = ip[1].u64;
  uint64_t w2 = ip[2].u64;
  runtime::Table* t = s.inst->tables[HI(w2)];
  uint64_t i = static_cast<uint32_t>(SLOT(LO(w1)));
  uint64_t n = static_cast<uint32_t>(SLOT(LO(w2)));
  if (i + n > t->size()) TRAP(TrapKind::TableOutOfBounds);
  std::fill_n(t->data() + i, n, SLOT(HI(w1)));
  DISPATCH(3);
}
L_TableCopy : {
  uint64_t w1 = ip[1].u64;
  uint64_t w3 = ip[3].u64;
  runtime::Table* dt = s.inst->tables[LO(w3)];
  runtime::Table* st = s.inst->tables[HI(w3)];
  uint64_t dst = static_cast<uint32_t>(SLOT(LO(w1)));
  uint64_t src = static_cast<uint32_t>(SLOT(HI(w1)));
  uint64_t n = static_cast<uint32_t>(SLOT(ip[2].u64));
  if (dst + n > dt->size() || src + n > st->size()) TRAP(TrapKind::TableOutOfBounds);
  if (n) std::memmove(dt->data() + dst, st->data() + src, n * sizeof(Slot));
  DISPATCH(4);
}
L_TableInit : {
  uint64_t w1 = ip[1].u64;
  uint64_t w2 = ip[2].u64;
  runtime::Table* t = s.inst->tables[ip[3].u64];
  const auto& seg = s.inst->elem_segments[HI(w2)];
  uint64_t dst = static_cast<uint32_t>(SLOT(LO(w1)));
  uint64_t src = static_cast<uint32_t>(SLOT(HI(w1)));
  uint64_t n = static_cast<uint32_t>(SLOT(LO(w2)));
  if (src + n > seg.size() || dst + n > t->size()) TRAP(TrapKind::TableOutOfBounds);
  if (n) std::memcpy(t->data() + dst, seg.data() + src, n * sizeof(Slot));
  DISPATCH(4);
}
L_ElemDrop:
  s.inst->elem_segments[ip[1].u64].clear();
  DISPATCH(2);
L_RefIsNull : {
  uint64_t w = ip[1].u64;
  SLOT(LO(w)) = SLOT(HI(w)) == runtime::kNullRef;
  DISPATCH(2);
}
L_RefFunc : {
  uint64_t w = ip[1].u64;
  SLOT(LO(w)) = runtime::funcref_slot(s.funcs[HI(w)]);
  DISPATCH(2);
}

  // --- Leaving the loop ------------------------------------------------------
returned:
  thread.frame_top = s.base;
  return ExecOutcome::returned();

suspend:
  // The running activation becomes a frame record too; snapshot code walks
  // base+1 .. frame_top, and resume() continues from the innermost.
  *s.fsp++ = Frame{ip, reinterpret_cast<Slot*>(fp), s.self};
  thread.frame_top = s.fsp;
  thread.suspended_base = s.base;
  {
    ExecOutcome out;
    out.kind = ExecOutcome::Kind::Suspended;
    return out;
  }

trap : {
  // Another thread may have grown a shared memory since this one last
  // looked: the access is tried again with the current size.
  if (s.trap_kind == TrapKind::MemoryOutOfBounds && s.mem && s.mem->shared() &&
      s.mem->size() != mem_size) {
    RELOAD_MEMORY();
    NEXT();
  }
  runtime::Trap t = make_trap(s.trap_kind, std::move(s.trap_message), s.self, ip, s.fsp, s.base);
  thread.frame_top = s.base;
  return ExecOutcome::trapped(std::move(t));
}

#undef SLOT
#undef LO
#undef HI
#undef NEXT
#undef DISPATCH
#undef TRAP
}

const void* const* handler_table() {
  static const void* const* table = [] {
    const void* const* labels = nullptr;
    Activation a;
    a.labels_out = &labels;
    execute(nullptr, a);
    return labels;
  }();
  return table;
}

} // namespace tern::interp
