// Backward liveness of locals over the basic blocks of a structured body.
// Blocks start after every control instruction (branches, if, else, end,
// loop); a branch to a block or if goes past its end, to a loop to its
// first instruction.
#include "wasm/liveness.h"

#include <algorithm>

namespace tern::wasm {
namespace {

constexpr size_t kNone = ~size_t(0);

using Bits = std::vector<uint64_t>;

void set_bit(Bits& b, uint32_t i) {
  b[i / 64] |= uint64_t(1) << (i % 64);
}
void clear_bit(Bits& b, uint32_t i) {
  b[i / 64] &= ~(uint64_t(1) << (i % 64));
}

bool ends_block(Op op) {
  switch (op) {
  case Op::Br:
  case Op::BrIf:
  case Op::BrTable:
  case Op::Return:
  case Op::Unreachable:
  case Op::If:
  case Op::Else:
  case Op::End:
  case Op::Loop:
    return true;
  default:
    return false;
  }
}

// Applies instruction `in` backwards: live before = (live after − def) ∪ use.
void step_back(const Instr& in, Bits& live) {
  if (in.op == Op::LocalGet) set_bit(live, in.a);
  if (in.op == Op::LocalSet || in.op == Op::LocalTee) clear_bit(live, in.a);
}

struct Body {
  std::vector<Instr> instrs;
  std::vector<size_t> end_of, else_of; // for block, loop and if instructions
};

Body decode(const Module& m, const Function& fn) {
  Body body;
  ByteReader bytes(
      std::span<const uint8_t>(m.bytes).subspan(fn.body_begin, fn.body_end - fn.body_begin),
      fn.body_begin);
  InstrReader reader(bytes);
  while (!reader.at_end()) reader.next(body.instrs.emplace_back());
  const size_t n = body.instrs.size();
  body.end_of.assign(n, kNone);
  body.else_of.assign(n, kNone);
  std::vector<size_t> open;
  for (size_t i = 0; i < n; ++i) {
    Op op = body.instrs[i].op;
    if (op == Op::Block || op == Op::Loop || op == Op::If) open.push_back(i);
    if (op == Op::Else && !open.empty()) body.else_of[open.back()] = i;
    if (op == Op::End && !open.empty()) {
      body.end_of[open.back()] = i;
      open.pop_back();
    }
  }
  return body;
}

} // namespace

LocalLiveness::LocalLiveness(const Module& m, uint32_t func_index) {
  const Function& fn = m.defined_func(func_index);
  const size_t n_locals = m.func_type(func_index).params.size() + fn.locals.size();
  words_ = (n_locals + 63) / 64;
  const auto& points = fn.info.stable_points;
  bits_.assign(points.size() * words_, 0);
  if (words_ == 0 || points.empty()) return;

  const Body body = decode(m, fn);
  const auto& ins = body.instrs;
  const size_t n = ins.size();

  // Basic blocks.
  std::vector<size_t> block_of(n), first, last;
  for (size_t i = 0; i < n; ++i) {
    if (i == 0 || ends_block(ins[i - 1].op)) first.push_back(i);
    block_of[i] = first.size() - 1;
  }
  for (size_t b = 0; b < first.size(); ++b)
    last.push_back(b + 1 < first.size() ? first[b + 1] - 1 : n - 1);

  // Successors, resolving labels with the stack of open constructs (the
  // function body at the bottom: a branch to it leaves the function).
  std::vector<std::vector<size_t>> succ(first.size());
  std::vector<size_t> open = {kNone};
  auto target = [&](uint32_t depth) {
    size_t start = open[open.size() - 1 - depth];
    if (start == kNone) return n;
    return ins[start].op == Op::Loop ? start + 1 : body.end_of[start] + 1;
  };
  for (size_t i = 0; i < n; ++i) {
    const Instr& in = ins[i];
    std::vector<size_t> to;
    switch (in.op) {
    case Op::Br:
      to = {target(in.a)};
      break;
    case Op::BrIf:
      to = {target(in.a), i + 1};
      break;
    case Op::BrTable:
      for (uint32_t d : in.targets) to.push_back(target(d));
      break;
    case Op::Return:
    case Op::Unreachable:
      break;
    case Op::If:
      to = {i + 1, body.else_of[i] != kNone ? body.else_of[i] + 1 : body.end_of[i] + 1};
      break;
    case Op::Else:
      to = {body.end_of[open.back()] + 1};
      break;
    default:
      to = {i + 1};
      break;
    }
    if (i == last[block_of[i]])
      for (size_t t : to)
        if (t < n) succ[block_of[i]].push_back(block_of[t]);
    if (in.op == Op::Block || in.op == Op::Loop || in.op == Op::If) open.push_back(i);
    if (in.op == Op::End && open.size() > 1) open.pop_back();
  }

  // Fixed point over the blocks, backwards.
  const size_t nb = first.size();
  std::vector<Bits> gen(nb, Bits(words_)), kill(nb, Bits(words_)), in_(nb, Bits(words_)),
      out(nb, Bits(words_));
  for (size_t b = 0; b < nb; ++b)
    for (size_t i = last[b] + 1; i-- > first[b];) {
      step_back(ins[i], gen[b]);
      if (ins[i].op == Op::LocalSet || ins[i].op == Op::LocalTee) set_bit(kill[b], ins[i].a);
    }
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t b = nb; b-- > 0;) {
      Bits o(words_);
      for (size_t s : succ[b])
        for (size_t w = 0; w < words_; ++w) o[w] |= in_[s][w];
      Bits i(words_);
      for (size_t w = 0; w < words_; ++w) i[w] = gen[b][w] | (o[w] & ~kill[b][w]);
      if (i != in_[b] || o != out[b]) {
        in_[b] = std::move(i);
        out[b] = std::move(o);
        changed = true;
      }
    }
  }

  // Each point: live into its instruction, walking back from its block's end.
  std::vector<std::pair<size_t, uint32_t>> at; // (instruction, point)
  for (uint32_t p = 0; p < points.size(); ++p) {
    auto it = std::lower_bound(ins.begin(), ins.end(), points[p].offset,
                               [](const Instr& in, uint32_t off) { return in.offset < off; });
    at.push_back({size_t(it - ins.begin()), p});
  }
  std::sort(at.begin(), at.end(), std::greater<>());
  size_t k = 0;
  while (k < at.size()) {
    const size_t b = block_of[std::min(at[k].first, n - 1)];
    Bits live = out[b];
    size_t i = last[b] + 1;
    for (; k < at.size() && at[k].first >= first[b]; ++k) {
      while (i > at[k].first) step_back(ins[--i], live);
      std::copy(live.begin(), live.end(), bits_.begin() + long(at[k].second * words_));
    }
  }
}

} // namespace tern::wasm
