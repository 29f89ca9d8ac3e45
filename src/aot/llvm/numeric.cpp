// Numeric instructions: constants aside (translate()), every instruction
// of the numeric classes of wasm/op_classes.def.
#include "aot/llvm/function_codegen.h"
#include "tern/error.h"

#include <cmath>
#include <fmt/format.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>

namespace tern::aot::llvmc {

void FunctionCodegen::numeric(const wasm::Instr& in) {
  llvm::Type* i32 = b_.getInt32Ty();
  llvm::Type* i64 = b_.getInt64Ty();
  llvm::Type* f32 = b_.getFloatTy();
  llvm::Type* f64 = b_.getDoubleTy();
  auto bin = [&](auto fn) {
    llvm::Value* rhs = pop();
    llvm::Value* lhs = pop();
    push(fn(lhs, rhs));
  };
  auto un = [&](auto fn) { push(fn(pop())); };
  auto cmp = [&](llvm::CmpInst::Predicate p) {
    return bin(
        [&](llvm::Value* a, llvm::Value* c) { return b_.CreateZExt(b_.CreateCmp(p, a, c), i32); });
  };
  auto intrinsic1 = [&](llvm::Intrinsic::ID id) {
    return un([&](llvm::Value* a) { return b_.CreateUnaryIntrinsic(id, a); });
  };
  // min/max: a NaN operand gives an arithmetic (quiet) NaN, which
  // llvm.minimum does not promise for a signalling one.
  auto min_max = [&](llvm::Intrinsic::ID id) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      llvm::Value* r = b_.CreateBinaryIntrinsic(id, a, c);
      return b_.CreateSelect(b_.CreateFCmpUNO(a, c), b_.CreateFAdd(a, c), r);
    });
  };
  auto intrinsic2 = [&](llvm::Intrinsic::ID id) {
    return bin([&](llvm::Value* a, llvm::Value* c) { return b_.CreateBinaryIntrinsic(id, a, c); });
  };
  auto arith = [&](llvm::Instruction::BinaryOps op) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      return b_.CreateBinOp(op, opaque_identity(a), opaque_identity(c));
    });
  };
  auto bitcount = [&](llvm::Intrinsic::ID id) {
    return un([&](llvm::Value* a) -> llvm::Value* {
      if (id == llvm::Intrinsic::ctpop) return b_.CreateUnaryIntrinsic(id, a);
      return b_.CreateBinaryIntrinsic(id, a, b_.getFalse()); // defined for zero
    });
  };
  auto shift = [&](llvm::Instruction::BinaryOps op) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      unsigned w = a->getType()->getIntegerBitWidth();
      return b_.CreateBinOp(op, a, b_.CreateAnd(c, llvm::ConstantInt::get(a->getType(), w - 1)));
    });
  };
  auto rotate = [&](llvm::Intrinsic::ID id) {
    return bin([&](llvm::Value* a, llvm::Value* c) {
      return b_.CreateIntrinsic(id, {a->getType()}, {a, a, c});
    });
  };
  auto divide = [&](bool is_signed, bool rem) {
    return bin([&](llvm::Value* a, llvm::Value* c) -> llvm::Value* {
      llvm::Type* t = a->getType();
      trap_if(b_.CreateICmpEQ(c, llvm::ConstantInt::get(t, 0)), TrapKind::IntegerDivideByZero);
      if (!is_signed) return rem ? b_.CreateURem(a, c) : b_.CreateUDiv(a, c);
      llvm::Value* minus_one = b_.CreateICmpEQ(c, llvm::ConstantInt::getAllOnesValue(t));
      if (rem) // x % -1 is 0; keep the hardware away from INT_MIN % -1
        return b_.CreateSRem(a, b_.CreateSelect(minus_one, llvm::ConstantInt::get(t, 1), c));
      unsigned w = t->getIntegerBitWidth();
      llvm::Value* min = llvm::ConstantInt::get(t, llvm::APInt::getSignedMinValue(w));
      trap_if(b_.CreateAnd(minus_one, b_.CreateICmpEQ(a, min)), TrapKind::IntegerOverflow);
      return b_.CreateSDiv(a, c);
    });
  };
  auto cast = [&](llvm::Instruction::CastOps op, llvm::Type* to) {
    return un([&](llvm::Value* a) { return b_.CreateCast(op, a, to); });
  };
  auto extend_from = [&](unsigned bits) {
    return un([&](llvm::Value* a) {
      return b_.CreateSExt(b_.CreateTrunc(a, b_.getIntNTy(bits)), a->getType());
    });
  };
  auto trunc = [&](llvm::Type* to, bool is_signed) {
    return un([&](llvm::Value* a) { return trunc_checked(a, to, is_signed); });
  };
  auto trunc_sat = [&](llvm::Type* to, bool is_signed) {
    return un([&](llvm::Value* a) {
      return b_.CreateIntrinsic(is_signed ? llvm::Intrinsic::fptosi_sat
                                          : llvm::Intrinsic::fptoui_sat,
                                {to, a->getType()}, {a});
    });
  };
  using P = llvm::CmpInst::Predicate;
  namespace I = llvm::Intrinsic;
  // Every numeric instruction, no default: a new one does not compile until
  // it is handled here.
  switch (in.op) {
  case Op::I32Eqz:
  case Op::I64Eqz:
    return un([&](llvm::Value* a) {
      return b_.CreateZExt(b_.CreateICmpEQ(a, llvm::ConstantInt::get(a->getType(), 0)), i32);
    });
  case Op::I32Eq:
  case Op::I64Eq:
    return cmp(P::ICMP_EQ);
  case Op::I32Ne:
  case Op::I64Ne:
    return cmp(P::ICMP_NE);
  case Op::I32LtS:
  case Op::I64LtS:
    return cmp(P::ICMP_SLT);
  case Op::I32LtU:
  case Op::I64LtU:
    return cmp(P::ICMP_ULT);
  case Op::I32GtS:
  case Op::I64GtS:
    return cmp(P::ICMP_SGT);
  case Op::I32GtU:
  case Op::I64GtU:
    return cmp(P::ICMP_UGT);
  case Op::I32LeS:
  case Op::I64LeS:
    return cmp(P::ICMP_SLE);
  case Op::I32LeU:
  case Op::I64LeU:
    return cmp(P::ICMP_ULE);
  case Op::I32GeS:
  case Op::I64GeS:
    return cmp(P::ICMP_SGE);
  case Op::I32GeU:
  case Op::I64GeU:
    return cmp(P::ICMP_UGE);
  case Op::F32Eq:
  case Op::F64Eq:
    return cmp(P::FCMP_OEQ);
  case Op::F32Ne:
  case Op::F64Ne:
    return cmp(P::FCMP_UNE);
  case Op::F32Lt:
  case Op::F64Lt:
    return cmp(P::FCMP_OLT);
  case Op::F32Gt:
  case Op::F64Gt:
    return cmp(P::FCMP_OGT);
  case Op::F32Le:
  case Op::F64Le:
    return cmp(P::FCMP_OLE);
  case Op::F32Ge:
  case Op::F64Ge:
    return cmp(P::FCMP_OGE);
  case Op::I32Clz:
  case Op::I64Clz:
    return bitcount(I::ctlz);
  case Op::I32Ctz:
  case Op::I64Ctz:
    return bitcount(I::cttz);
  case Op::I32Popcnt:
  case Op::I64Popcnt:
    return bitcount(I::ctpop);
  case Op::I32Add:
  case Op::I64Add:
    return bin([&](auto a, auto c) { return b_.CreateAdd(a, c); });
  case Op::I32Sub:
  case Op::I64Sub:
    return bin([&](auto a, auto c) { return b_.CreateSub(a, c); });
  case Op::I32Mul:
  case Op::I64Mul:
    return bin([&](auto a, auto c) { return b_.CreateMul(a, c); });
  case Op::I32DivS:
  case Op::I64DivS:
    return divide(true, false);
  case Op::I32DivU:
  case Op::I64DivU:
    return divide(false, false);
  case Op::I32RemS:
  case Op::I64RemS:
    return divide(true, true);
  case Op::I32RemU:
  case Op::I64RemU:
    return divide(false, true);
  case Op::I32And:
  case Op::I64And:
    return bin([&](auto a, auto c) { return b_.CreateAnd(a, c); });
  case Op::I32Or:
  case Op::I64Or:
    return bin([&](auto a, auto c) { return b_.CreateOr(a, c); });
  case Op::I32Xor:
  case Op::I64Xor:
    return bin([&](auto a, auto c) { return b_.CreateXor(a, c); });
  case Op::I32Shl:
  case Op::I64Shl:
    return shift(llvm::Instruction::Shl);
  case Op::I32ShrS:
  case Op::I64ShrS:
    return shift(llvm::Instruction::AShr);
  case Op::I32ShrU:
  case Op::I64ShrU:
    return shift(llvm::Instruction::LShr);
  case Op::I32Rotl:
  case Op::I64Rotl:
    return rotate(I::fshl);
  case Op::I32Rotr:
  case Op::I64Rotr:
    return rotate(I::fshr);
  case Op::F32Abs:
  case Op::F64Abs:
    return intrinsic1(I::fabs);
  case Op::F32Neg:
  case Op::F64Neg:
    return un([&](llvm::Value* a) { return b_.CreateFNeg(a); });
  case Op::F32Ceil:
  case Op::F64Ceil:
    return intrinsic1(I::ceil);
  case Op::F32Floor:
  case Op::F64Floor:
    return intrinsic1(I::floor);
  case Op::F32Trunc:
  case Op::F64Trunc:
    return intrinsic1(I::trunc);
  case Op::F32Nearest:
  case Op::F64Nearest:
    return intrinsic1(I::roundeven);
  case Op::F32Sqrt:
  case Op::F64Sqrt:
    return intrinsic1(I::sqrt);
  case Op::F32Add:
  case Op::F64Add:
    return arith(llvm::Instruction::FAdd);
  case Op::F32Sub:
  case Op::F64Sub:
    return arith(llvm::Instruction::FSub);
  case Op::F32Mul:
  case Op::F64Mul:
    return arith(llvm::Instruction::FMul);
  case Op::F32Div:
  case Op::F64Div:
    return arith(llvm::Instruction::FDiv);
  case Op::F32Min:
  case Op::F64Min:
    return min_max(I::minimum);
  case Op::F32Max:
  case Op::F64Max:
    return min_max(I::maximum);
  case Op::F32Copysign:
  case Op::F64Copysign:
    return intrinsic2(I::copysign);
  case Op::I32WrapI64:
    return cast(llvm::Instruction::Trunc, i32);
  case Op::I32TruncF32S:
  case Op::I32TruncF64S:
    return trunc(i32, true);
  case Op::I32TruncF32U:
  case Op::I32TruncF64U:
    return trunc(i32, false);
  case Op::I64TruncF32S:
  case Op::I64TruncF64S:
    return trunc(i64, true);
  case Op::I64TruncF32U:
  case Op::I64TruncF64U:
    return trunc(i64, false);
  case Op::I32TruncSatF32S:
  case Op::I32TruncSatF64S:
    return trunc_sat(i32, true);
  case Op::I32TruncSatF32U:
  case Op::I32TruncSatF64U:
    return trunc_sat(i32, false);
  case Op::I64TruncSatF32S:
  case Op::I64TruncSatF64S:
    return trunc_sat(i64, true);
  case Op::I64TruncSatF32U:
  case Op::I64TruncSatF64U:
    return trunc_sat(i64, false);
  case Op::I64ExtendI32S:
    return cast(llvm::Instruction::SExt, i64);
  case Op::I64ExtendI32U:
    return cast(llvm::Instruction::ZExt, i64);
  case Op::F32ConvertI32S:
  case Op::F32ConvertI64S:
    return cast(llvm::Instruction::SIToFP, f32);
  case Op::F32ConvertI32U:
  case Op::F32ConvertI64U:
    return cast(llvm::Instruction::UIToFP, f32);
  case Op::F64ConvertI32S:
  case Op::F64ConvertI64S:
    return cast(llvm::Instruction::SIToFP, f64);
  case Op::F64ConvertI32U:
  case Op::F64ConvertI64U:
    return cast(llvm::Instruction::UIToFP, f64);
  case Op::F32DemoteF64: // demote(promote(x)) must still quiet a signalling x
    return un([&](llvm::Value* a) {
      if (llvm::isa<llvm::FPExtInst>(a)) a = opaque(a);
      return b_.CreateFPTrunc(a, f32);
    });
  case Op::F64PromoteF32:
    return cast(llvm::Instruction::FPExt, f64);
  case Op::I32ReinterpretF32:
    return cast(llvm::Instruction::BitCast, i32);
  case Op::I64ReinterpretF64:
    return cast(llvm::Instruction::BitCast, i64);
  case Op::F32ReinterpretI32:
    return cast(llvm::Instruction::BitCast, f32);
  case Op::F64ReinterpretI64:
    return cast(llvm::Instruction::BitCast, f64);
  case Op::I32Extend8S:
  case Op::I64Extend8S:
    return extend_from(8);
  case Op::I32Extend16S:
  case Op::I64Extend16S:
    return extend_from(16);
  case Op::I64Extend32S:
    return extend_from(32);
#define WASM_BINARY(n)
#define WASM_UNARY(n)
#define WASM_LOAD(n) case Op::n:
#define WASM_STORE(n) case Op::n:
#define WASM_ATOMIC(n) case Op::n:
#define WASM_OTHER(n) case Op::n:
#include "wasm/op_classes.def"
    break;
  }
  throw Error(fmt::format("compiler: {} at offset 0x{:x} is not a numeric instruction",
                          wasm::op_name(in.op), in.offset));
}

llvm::Value* FunctionCodegen::trunc_checked(llvm::Value* x, llvm::Type* to, bool is_signed) {
  llvm::Type* ft = x->getType();
  trap_if(b_.CreateFCmpUNO(x, x), TrapKind::InvalidConversion);
  const unsigned bits = to->getIntegerBitWidth();
  const double two_n = std::ldexp(1.0, int(bits));
  llvm::Value* in_range;
  if (is_signed) {
    const double half = two_n / 2; // 2^(n-1)
    llvm::Value* hi = b_.CreateFCmpOLT(x, llvm::ConstantFP::get(ft, half));
    llvm::Value* lo;
    if (bits == 32 && ft->isDoubleTy()) // (-2^31-1, -2^31) truncates into range
      lo = b_.CreateFCmpOGT(x, llvm::ConstantFP::get(ft, -half - 1));
    else
      lo = b_.CreateFCmpOGE(x, llvm::ConstantFP::get(ft, -half));
    in_range = b_.CreateAnd(lo, hi);
  } else {
    in_range = b_.CreateAnd(b_.CreateFCmpOGT(x, llvm::ConstantFP::get(ft, -1.0)),
                            b_.CreateFCmpOLT(x, llvm::ConstantFP::get(ft, two_n)));
  }
  trap_if(b_.CreateNot(in_range), TrapKind::IntegerOverflow);
  return is_signed ? b_.CreateFPToSI(x, to) : b_.CreateFPToUI(x, to);
}

llvm::Value* FunctionCodegen::opaque(llvm::Value* v) {
  llvm::Type* type = v->getType();
  llvm::Type* bits = b_.getIntNTy(type->getPrimitiveSizeInBits());
  auto* fn_type = llvm::FunctionType::get(bits, {bits}, false);
  llvm::InlineAsm* asm_ = llvm::InlineAsm::get(fn_type, "", "=r,0", /*hasSideEffects=*/false);
  return b_.CreateBitCast(b_.CreateCall(fn_type, asm_, {b_.CreateBitCast(v, bits)}), type);
}

llvm::Value* FunctionCodegen::opaque_identity(llvm::Value* v) {
  auto* c = llvm::dyn_cast<llvm::ConstantFP>(v);
  if (!c) return v;
  const llvm::APFloat& f = c->getValueAPF();
  llvm::APFloat one(f.getSemantics(), 1);
  bool identity = f.isZero() || llvm::APFloat(llvm::abs(f)).compare(one) == llvm::APFloat::cmpEqual;
  return identity ? opaque(v) : v;
}

} // namespace tern::aot::llvmc
