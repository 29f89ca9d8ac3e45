// call and call_indirect: finding the callee and issuing the call. With
// stable points the sequence around the call (merge, unwind check, unwind
// and restore paths) is around_call's (stable_points.cpp).
#include "aot/llvm/function_codegen.h"

namespace tern::aot::llvmc {

void FunctionCodegen::push_results(const wasm::FuncType& ft, llvm::Value* result) {
  if (ft.results.size() == 1) push(result);
  for (unsigned i = 0; ft.results.size() > 1 && i < ft.results.size(); ++i)
    push(b_.CreateExtractValue(result, {i}));
}

void FunctionCodegen::continue_after_call(const CallSite& site, const wasm::FuncType& ft) {
  b_.SetInsertPoint(site.cont);
  stack_ = site.below();
  push_results(ft, site.result);
}

void FunctionCodegen::on_call(const wasm::Instr& in) {
  const wasm::FuncType& ft = wasm_.func_type(in.a);
  const bool imported = wasm_.is_imported_func(in.a);
  std::vector<llvm::Value*> args = pop_n(ft.params.size());

  // The callee: direct for the module's own functions, else its VmFunc.
  auto issue = [&](const std::vector<llvm::Value*>& call_args) -> llvm::Value* {
    std::vector<llvm::Value*> full = {thread(), instance()};
    if (imported) {
      llvm::Value* funcs = instance_field(offsets::kInstFuncs);
      llvm::Value* entry =
          prologue_load(b_.getPtrTy(), funcs, uint64_t(in.a) * offsets::kVmFuncSize);
      llvm::Value* cctx =
          prologue_load(b_.getPtrTy(), funcs, uint64_t(in.a) * offsets::kVmFuncSize + 8);
      full[1] = cctx;
      full.insert(full.end(), call_args.begin(), call_args.end());
      return b_.CreateCall(mc_.function_type(ft), entry, full);
    }
    full.insert(full.end(), call_args.begin(), call_args.end());
    return b_.CreateCall(mc_.defined_function(in.a), full);
  };
  if (!stable_points_) {
    push_results(ft, issue(args));
    return;
  }

  const uint32_t point = point_index(in.offset, StablePointKind::CallSite);
  CallLayout layout;
  layout.below = stack_.size();
  layout.args = args.size();
  // An imported callee may be a host function: a suspended host call is
  // re-issued with its saved arguments (add_host_call_restore).
  layout.saved = imported ? layout.below + layout.args : layout.below;
  std::vector<llvm::Value*> merged = stack_;
  merged.insert(merged.end(), args.begin(), args.end());
  CallSite site = around_call(
      point, layout, merged, [&](const CallSite& s) { return issue(s.args()); },
      [] { return std::vector<llvm::Value*>{}; });
  if (imported) add_host_call_restore(point, site.phis, site.block);
  continue_after_call(site, ft);
}

void FunctionCodegen::on_call_indirect(const wasm::Instr& in) {
  const wasm::FuncType& ft = wasm_.types[in.a];
  llvm::Value* index = pop();
  std::vector<llvm::Value*> args = pop_n(ft.params.size());
  std::vector<llvm::Value*> below = stack_;

  // With stable points the whole instruction can be re-entered (a host
  // call re-issued): `start` merges the operands, the arguments and the
  // index from the normal path and from add_host_call_restore.
  std::vector<llvm::PHINode*> start_phis;
  llvm::BasicBlock* start = nullptr;
  if (stable_points_) {
    std::vector<llvm::Value*> merged = below;
    merged.insert(merged.end(), args.begin(), args.end());
    merged.push_back(index);
    start = block("call_indirect");
    start_phis = merge_into(start, merged);
    below.assign(start_phis.begin(), start_phis.begin() + below.size());
    args.assign(start_phis.begin() + below.size(), start_phis.end() - 1);
    index = start_phis.back();
  }

  // Table bounds, null, signature: the interpreter's checks and messages.
  llvm::Value* bounds =
      prologue_load(b_.getPtrTy(), instance_field(offsets::kInstTables), uint64_t(in.b) * 8);
  llvm::Value* size = mc_.load_runtime(b_, b_.getInt64Ty(), bounds, offsets::kBoundsSize, false);
  llvm::Value* index64 = b_.CreateZExt(index, b_.getInt64Ty());
  trap_if(b_.CreateICmpUGE(index64, size), TrapKind::IndirectCallOutOfRange, index);
  llvm::Value* data = mc_.load_runtime(b_, b_.getPtrTy(), bounds, offsets::kBoundsBase, false);
  llvm::LoadInst* elem =
      b_.CreateLoad(b_.getInt64Ty(), b_.CreateInBoundsGEP(b_.getInt64Ty(), data, index64));
  elem->setMetadata(llvm::LLVMContext::MD_tbaa, mc_.tags().table);
  trap_if(b_.CreateICmpEQ(elem, b_.getInt64(0)), TrapKind::IndirectCallNull, index);
  llvm::Value* func = b_.CreateIntToPtr(elem, b_.getPtrTy());
  llvm::Value* type_id = mc_.load_runtime(b_, b_.getInt32Ty(), func, offsets::kFuncTypeId, true);
  llvm::Value* expected =
      prologue_load(b_.getInt32Ty(), instance_field(offsets::kInstTypeIds), uint64_t(in.a) * 4);
  trap_if(b_.CreateICmpNE(type_id, expected), TrapKind::IndirectCallTypeMismatch);
  llvm::Value* vmfunc = mc_.load_runtime(b_, b_.getPtrTy(), func, offsets::kFuncCode, true);
  llvm::Value* entry = mc_.load_runtime(b_, b_.getPtrTy(), vmfunc, 0, true);
  llvm::Value* cctx = mc_.load_runtime(b_, b_.getPtrTy(), vmfunc, 8, true);

  auto issue = [&](llvm::Value* callee_entry, llvm::Value* callee_ctx,
                   const std::vector<llvm::Value*>& call_args) -> llvm::Value* {
    std::vector<llvm::Value*> full = {thread(), callee_ctx};
    full.insert(full.end(), call_args.begin(), call_args.end());
    return b_.CreateCall(mc_.function_type(ft), callee_entry, full);
  };
  if (!stable_points_) {
    push_results(ft, issue(entry, cctx, args));
    return;
  }

  // The callee comes from the lookup or, rewinding, from the saved frame
  // below this one's (RewindCallee); a frame saves the table index too.
  const uint32_t point = point_index(in.offset, StablePointKind::CallSite);
  CallLayout layout;
  layout.below = below.size();
  layout.args = args.size();
  layout.callee = 3; // index, entry, context
  layout.saved = layout.below + layout.args + 1;
  std::vector<llvm::Value*> merged = below;
  merged.insert(merged.end(), args.begin(), args.end());
  merged.insert(merged.end(), {index, entry, cctx});
  CallSite site = around_call(
      point, layout, merged,
      [&](const CallSite& s) { return issue(s.callee(1), s.callee(2), s.args()); },
      [&] {
        llvm::Value* callee = call_helper(Helper::RewindCallee, {thread()});
        llvm::Value* rewound_entry = mc_.load_runtime(b_, b_.getPtrTy(), callee, 0, false);
        llvm::Value* rewound_ctx = mc_.load_runtime(b_, b_.getPtrTy(), callee, 8, false);
        return std::vector<llvm::Value*>{u32(0), rewound_entry, rewound_ctx};
      });
  add_host_call_restore(point, start_phis, start);
  continue_after_call(site, ft);
}

} // namespace tern::aot::llvmc
