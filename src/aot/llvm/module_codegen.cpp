// Module-level code generation: declarations, the helper table, the
// per-type trampolines (host → wasm) and host stubs (wasm → host), and the
// ModuleInfo descriptor the loader finds (aot/abi.h).
#include "aot/cache.h"
#include "aot/llvm/codegen.h"

#include <fmt/format.h>

namespace tern::aot::llvmc {

using wasm::ValType;

AliasTags alias_tags(llvm::LLVMContext& context) {
  llvm::MDBuilder md(context);
  llvm::MDNode* root = md.createTBAARoot("tern");
  auto tag = [&](const char* name) {
    llvm::MDNode* type = md.createTBAAScalarTypeNode(name, root);
    return md.createTBAAStructTagNode(type, type, 0);
  };
  return {tag("linear memory"), tag("runtime"), tag("global"), tag("table")};
}

ModuleCodegen::ModuleCodegen(llvm::LLVMContext& context, const wasm::Module& module,
                             const util::Sha256Digest& hash, const CompileOptions& options,
                             const llvm::DataLayout& layout, const std::string& triple)
    : context_(context), wasm_(module), hash_(hash), options_(options),
      module_(std::make_unique<llvm::Module>("wasm", context)) {
  module_->setDataLayout(layout);
  module_->setTargetTriple(triple);
  tags_ = alias_tags(context_);
  // A baseline CPU names an instruction set, not a machine to tune for:
  // x86-64-v2 alone would tune for Sandy Bridge (rotates as SHLD, slow
  // elsewhere). A named CPU (or native) tunes for itself.
  if (options.target.cpu.empty() && options.target.arch == Arch::X86_64) tune_cpu_ = "generic";
}

llvm::Type* ModuleCodegen::ir_type(ValType t) const {
  switch (t) {
  case ValType::I32:
    return llvm::Type::getInt32Ty(context_);
  case ValType::F32:
    return llvm::Type::getFloatTy(context_);
  case ValType::F64:
    return llvm::Type::getDoubleTy(context_);
  default: // i64 and references (Slots)
    return llvm::Type::getInt64Ty(context_);
  }
}

llvm::Type* ModuleCodegen::result_type(const wasm::FuncType& type) const {
  if (type.results.empty()) return llvm::Type::getVoidTy(context_);
  if (type.results.size() == 1) return ir_type(type.results[0]);
  std::vector<llvm::Type*> fields;
  for (ValType t : type.results) fields.push_back(ir_type(t));
  return llvm::StructType::get(context_, fields);
}

llvm::FunctionType* ModuleCodegen::function_type(const wasm::FuncType& type) const {
  llvm::Type* ptr = llvm::PointerType::getUnqual(context_);
  std::vector<llvm::Type*> params = {ptr, ptr};
  for (ValType t : type.params) params.push_back(ir_type(t));
  return llvm::FunctionType::get(result_type(type), params, false);
}

llvm::Value* ModuleCodegen::to_slot(llvm::IRBuilder<>& b, llvm::Value* v) const {
  llvm::Type* t = v->getType();
  if (t->isIntegerTy(64)) return v;
  if (t->isIntegerTy(32)) return b.CreateZExt(v, b.getInt64Ty());
  if (t->isFloatTy()) return b.CreateZExt(b.CreateBitCast(v, b.getInt32Ty()), b.getInt64Ty());
  return b.CreateBitCast(v, b.getInt64Ty()); // double
}

llvm::Value* ModuleCodegen::from_slot(llvm::IRBuilder<>& b, llvm::Value* slot,
                                      llvm::Type* type) const {
  if (type->isIntegerTy(64)) return slot;
  if (type->isIntegerTy(32)) return b.CreateTrunc(slot, b.getInt32Ty());
  if (type->isFloatTy()) return b.CreateBitCast(b.CreateTrunc(slot, b.getInt32Ty()), type);
  return b.CreateBitCast(slot, type);
}

llvm::LoadInst* ModuleCodegen::load_runtime(llvm::IRBuilder<>& b, llvm::Type* type,
                                            llvm::Value* base, uint64_t offset,
                                            bool invariant) const {
  llvm::Value* p = offset ? b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), base, offset) : base;
  llvm::LoadInst* load = b.CreateLoad(type, p);
  load->setMetadata(llvm::LLVMContext::MD_tbaa, tags_.runtime);
  if (invariant)
    load->setMetadata(llvm::LLVMContext::MD_invariant_load, llvm::MDNode::get(context_, {}));
  return load;
}

void ModuleCodegen::declare_helpers() {
  llvm::Type* ptr = llvm::PointerType::getUnqual(context_);
  llvm::Type* u32 = llvm::Type::getInt32Ty(context_);
  llvm::Type* u64 = llvm::Type::getInt64Ty(context_);
  llvm::Type* v = llvm::Type::getVoidTy(context_);
  auto fn = [](llvm::Type* r, std::vector<llvm::Type*> params) {
    return llvm::FunctionType::get(r, params, false);
  };
  helper_types_.resize(kNumHelpers);
  auto set = [&](Helper h, llvm::FunctionType* t) { helper_types_[size_t(h)] = t; };
  set(Helper::Trap, fn(v, {ptr, u32, u32, u32, u32}));
  set(Helper::EntrySlow, fn(u32, {ptr, ptr, u32, u64}));
  set(Helper::LoopSlow, fn(u32, {ptr, u32}));
  set(Helper::RewindFinish, fn(v, {ptr, u32}));
  set(Helper::RewindCallee, fn(ptr, {ptr}));
  set(Helper::SaveFrame, fn(ptr, {ptr, ptr, u32, u32, u32}));
  set(Helper::CallHost, fn(v, {ptr, ptr, ptr}));
  set(Helper::MemoryGrow, fn(u32, {ptr, ptr, u32}));
  set(Helper::MemoryFill, fn(v, {ptr, ptr, u32, u32, u32}));
  set(Helper::MemoryCopy, fn(v, {ptr, ptr, u32, u32, u32}));
  set(Helper::MemoryInit, fn(v, {ptr, ptr, u32, u32, u32, u32}));
  set(Helper::DataDrop, fn(v, {ptr, ptr, u32}));
  set(Helper::TableGet, fn(u64, {ptr, ptr, u32, u32}));
  set(Helper::TableSet, fn(v, {ptr, ptr, u32, u32, u64}));
  set(Helper::TableGrow, fn(u32, {ptr, ptr, u32, u64, u32}));
  set(Helper::TableFill, fn(v, {ptr, ptr, u32, u32, u64, u32}));
  set(Helper::TableCopy, fn(v, {ptr, ptr, u32, u32, u32, u32, u32}));
  set(Helper::TableInit, fn(v, {ptr, ptr, u32, u32, u32, u32, u32}));
  set(Helper::ElemDrop, fn(v, {ptr, ptr, u32}));
  set(Helper::AtomicWait, fn(u32, {ptr, ptr, u64, u64, u64, u32}));
  set(Helper::AtomicNotify, fn(u32, {ptr, ptr, u64, u32}));

  auto* table_type = llvm::ArrayType::get(ptr, kNumHelpers);
  helper_table_ =
      new llvm::GlobalVariable(*module_, table_type, false, llvm::GlobalValue::InternalLinkage,
                               llvm::ConstantAggregateZero::get(table_type), "tern_helpers");
}

llvm::Value* ModuleCodegen::helper(llvm::IRBuilder<>& b, Helper id) const {
  llvm::Type* ptr = b.getPtrTy();
  llvm::Value* slot = b.CreateConstInBoundsGEP2_32(helper_table_->getValueType(), helper_table_, 0,
                                                   static_cast<unsigned>(id));
  // Written once by the loader, but not marked invariant: helpers are
  // called on cold paths, and a hoisted address would hold a register on
  // the hot one.
  llvm::LoadInst* load = b.CreateLoad(ptr, slot);
  load->setMetadata(llvm::LLVMContext::MD_tbaa, tags_.runtime);
  return load;
}

llvm::Function* ModuleCodegen::preserving_thunk(Helper id) {
  // x86-64 only so far: AArch64 has the convention too, but its code has
  // not been run under it yet.
  if (options_.target.arch != Arch::X86_64) return nullptr;
  llvm::Function*& f = thunks_[size_t(id)];
  if (f) return f;
  f = llvm::Function::Create(helper_type(id), llvm::GlobalValue::InternalLinkage,
                             fmt::format("tern_slow_{}", static_cast<uint32_t>(id)), *module_);
  f->setCallingConv(llvm::CallingConv::PreserveMost);
  // SaveFrame's result is unused until expand_saved_values writes the
  // frame after optimization: a local thunk would lose its return value
  // (dead argument elimination, IPSCCP), which only callers it cannot see
  // prevent. A module compiled in parts makes every thunk so anyway.
  if (id == Helper::SaveFrame) {
    f->setLinkage(llvm::GlobalValue::ExternalLinkage);
    f->setVisibility(llvm::GlobalValue::HiddenVisibility);
  }
  f->addFnAttr(llvm::Attribute::NoUnwind);
  f->addFnAttr(llvm::Attribute::NoInline);
  f->addFnAttr(llvm::Attribute::Cold);
  f->addFnAttr("frame-pointer", "none");
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
  std::vector<llvm::Value*> args;
  for (llvm::Argument& a : f->args()) args.push_back(&a);
  llvm::CallInst* call = b.CreateCall(helper_type(id), helper(b, id), args);
  call->setTailCallKind(llvm::CallInst::TCK_NoTail);
  for (unsigned i = 0; i < args.size(); ++i) // as FunctionCodegen::call_helper
    if (args[i]->getType()->isIntegerTy(32)) call->addParamAttr(i, llvm::Attribute::ZExt);
  if (f->getReturnType()->isVoidTy())
    b.CreateRetVoid();
  else
    b.CreateRet(call);
  return f;
}

void ModuleCodegen::declare_functions() {
  for (uint32_t i = wasm_.num_imported_funcs; i < wasm_.func_types.size(); ++i) {
    llvm::Function* f = llvm::Function::Create(function_type(wasm_.func_type(i)),
                                               llvm::GlobalValue::InternalLinkage,
                                               fmt::format("wasm_f{}", i), *module_);
    f->addFnAttr(llvm::Attribute::NoUnwind);
    f->addFnAttr("frame-pointer", "none");
    if (!tune_cpu_.empty()) f->addFnAttr("tune-cpu", tune_cpu_);
    functions_.push_back(f);
  }
}

// void tramp(t, ctx, entry, slots): arguments from slots, results to slots.
llvm::Function* ModuleCodegen::make_trampoline(const wasm::FuncType& type, uint32_t type_index) {
  llvm::Type* ptr = llvm::PointerType::getUnqual(context_);
  auto* ft = llvm::FunctionType::get(llvm::Type::getVoidTy(context_), {ptr, ptr, ptr, ptr}, false);
  auto* f = llvm::Function::Create(ft, llvm::GlobalValue::InternalLinkage,
                                   fmt::format("tern_trampoline_{}", type_index), *module_);
  f->addFnAttr(llvm::Attribute::NoUnwind);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
  llvm::Value* slots = f->getArg(3);
  std::vector<llvm::Value*> args = {f->getArg(0), f->getArg(1)};
  for (size_t i = 0; i < type.params.size(); ++i) {
    llvm::Value* p = b.CreateConstInBoundsGEP1_64(b.getInt64Ty(), slots, i);
    args.push_back(from_slot(b, b.CreateLoad(b.getInt64Ty(), p), ir_type(type.params[i])));
  }
  llvm::Value* r = b.CreateCall(function_type(type), f->getArg(2), args);
  for (size_t i = 0; i < type.results.size(); ++i) {
    llvm::Value* v = type.results.size() == 1 ? r : b.CreateExtractValue(r, {unsigned(i)});
    b.CreateStore(to_slot(b, v), b.CreateConstInBoundsGEP1_64(b.getInt64Ty(), slots, i));
  }
  b.CreateRetVoid();
  return f;
}

// R stub(t, HostImport*, P...): marshals through slots into CallHost.
llvm::Function* ModuleCodegen::make_host_stub(const wasm::FuncType& type, uint32_t type_index) {
  auto* f = llvm::Function::Create(function_type(type), llvm::GlobalValue::InternalLinkage,
                                   fmt::format("tern_host_stub_{}", type_index), *module_);
  f->addFnAttr(llvm::Attribute::NoUnwind);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(context_, "entry", f));
  size_t n = std::max<size_t>({type.params.size(), type.results.size(), 1});
  llvm::Value* slots = b.CreateAlloca(llvm::ArrayType::get(b.getInt64Ty(), n));
  for (size_t i = 0; i < type.params.size(); ++i)
    b.CreateStore(to_slot(b, f->getArg(unsigned(i + 2))),
                  b.CreateConstInBoundsGEP1_64(b.getInt64Ty(), slots, i));
  b.CreateCall(helper_type(Helper::CallHost), helper(b, Helper::CallHost),
               {f->getArg(0), f->getArg(1), slots});
  std::vector<llvm::Value*> results;
  for (size_t i = 0; i < type.results.size(); ++i) {
    llvm::Value* s =
        b.CreateLoad(b.getInt64Ty(), b.CreateConstInBoundsGEP1_64(b.getInt64Ty(), slots, i));
    results.push_back(from_slot(b, s, ir_type(type.results[i])));
  }
  if (results.empty())
    b.CreateRetVoid();
  else if (results.size() == 1)
    b.CreateRet(results[0]);
  else
    b.CreateAggregateRet(results.data(), unsigned(results.size()));
  return f;
}

llvm::Constant* ModuleCodegen::pointer_array(const std::vector<llvm::Function*>& fns,
                                             const char* name) {
  llvm::Type* ptr = llvm::PointerType::getUnqual(context_);
  auto* type = llvm::ArrayType::get(ptr, fns.size());
  std::vector<llvm::Constant*> items(fns.begin(), fns.end());
  return new llvm::GlobalVariable(*module_, type, true, llvm::GlobalValue::InternalLinkage,
                                  llvm::ConstantArray::get(type, items), name);
}

void ModuleCodegen::make_descriptor(const std::vector<llvm::Function*>& trampolines,
                                    const std::vector<llvm::Function*>& stubs) {
  llvm::Type* i8 = llvm::Type::getInt8Ty(context_);
  llvm::Type* i32 = llvm::Type::getInt32Ty(context_);
  llvm::Type* i64 = llvm::Type::getInt64Ty(context_);
  llvm::Type* ptr = llvm::PointerType::getUnqual(context_);
  auto* hash_type = llvm::ArrayType::get(i8, 32);
  // Field for field ModuleInfo (aot/abi.h).
  auto* type = llvm::StructType::get(
      context_, {i64, i32, i32, i32, i32, hash_type, ptr, i32, i32, ptr, ptr, ptr});
  const uint32_t flags = module_flags(options_);
  std::vector<llvm::Constant*> hash_bytes;
  for (uint8_t byte : hash_) hash_bytes.push_back(llvm::ConstantInt::get(i8, byte));
  llvm::Constant* fields[] = {
      llvm::ConstantInt::get(i64, kModuleInfoMagic),
      llvm::ConstantInt::get(i32, kAbiVersion),
      llvm::ConstantInt::get(i32, flags),
      llvm::ConstantInt::get(i32, functions_.size()),
      llvm::ConstantInt::get(i32, wasm_.types.size()),
      llvm::ConstantArray::get(hash_type, hash_bytes),
      helper_table_,
      llvm::ConstantInt::get(i32, kNumHelpers),
      llvm::ConstantInt::get(i32, 0),
      pointer_array(functions_, "tern_functions"),
      pointer_array(trampolines, "tern_trampolines"),
      pointer_array(stubs, "tern_host_stubs"),
  };
  auto* info = new llvm::GlobalVariable(*module_, type, true, llvm::GlobalValue::ExternalLinkage,
                                        llvm::ConstantStruct::get(type, fields), kModuleInfoSymbol);
  info->setAlignment(llvm::Align(8));
}

std::unique_ptr<llvm::Module> ModuleCodegen::run() {
  declare_helpers();
  declare_functions();
  for (uint32_t i = wasm_.num_imported_funcs; i < wasm_.func_types.size(); ++i)
    generate_function(*this, i);
  std::vector<llvm::Function*> trampolines, stubs;
  for (uint32_t t = 0; t < wasm_.types.size(); ++t) {
    trampolines.push_back(make_trampoline(wasm_.types[t], t));
    stubs.push_back(make_host_stub(wasm_.types[t], t));
  }
  make_descriptor(trampolines, stubs);
  return std::move(module_);
}

} // namespace tern::aot::llvmc
