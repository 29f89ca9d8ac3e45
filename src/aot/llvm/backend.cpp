#include "aot/llvm/backend.h"

#include "aot/llvm/access_nowrap.h"
#include "aot/llvm/call_layout.h"
#include "aot/llvm/codegen.h"
#include "aot/llvm/inline_cost.h"
#include "aot/llvm/part_cache.h"
#include "aot/llvm/partition.h"
#include "tern/internal_error.h"
#include "util/file.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>
#include <lld/Common/Driver.h>
#include <llvm/Analysis/LoopInfo.h>
#include <llvm/Analysis/ScalarEvolution.h>
#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Passes/StandardInstrumentations.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/Triple.h>
#include <llvm/Transforms/Utils/BasicBlockUtils.h>
#include <llvm/Transforms/Utils/Local.h>
#include <llvm/Transforms/Utils/Mem2Reg.h>
#include <mutex>
#include <sched.h>
#include <thread>
#include <unistd.h>

extern "C" {
void LLVMInitializeX86TargetInfo();
void LLVMInitializeX86Target();
void LLVMInitializeX86TargetMC();
void LLVMInitializeX86AsmPrinter();
void LLVMInitializeAArch64TargetInfo();
void LLVMInitializeAArch64Target();
void LLVMInitializeAArch64TargetMC();
void LLVMInitializeAArch64AsmPrinter();
void LLVMInitializeSystemZTargetInfo();
void LLVMInitializeSystemZTarget();
void LLVMInitializeSystemZTargetMC();
void LLVMInitializeSystemZAsmPrinter();
}

LLD_HAS_DRIVER(elf)

namespace tern::aot::llvmc {
namespace {

std::string triple_of(Arch arch) {
  switch (arch) {
  case Arch::X86_64:
    return "x86_64-unknown-linux-gnu";
  case Arch::AArch64:
    return "aarch64-unknown-linux-gnu";
  case Arch::S390x:
    return "s390x-unknown-linux-gnu";
  }
  return {};
}

llvm::OptimizationLevel pass_level(unsigned opt_level) {
  switch (opt_level) {
  case 0:
    return llvm::OptimizationLevel::O0;
  case 1:
    return llvm::OptimizationLevel::O1;
  case 2:
    return llvm::OptimizationLevel::O2;
  default:
    return llvm::OptimizationLevel::O3;
  }
}

llvm::CodeGenOptLevel codegen_level(unsigned opt_level) {
  switch (opt_level) {
  case 0:
    return llvm::CodeGenOptLevel::None;
  case 1:
    return llvm::CodeGenOptLevel::Less;
  case 2:
    return llvm::CodeGenOptLevel::Default;
  default:
    return llvm::CodeGenOptLevel::Aggressive;
  }
}

// A C library that provides nothing: no call to memset, memcpy or libm may
// be invented by the optimizer.
llvm::TargetLibraryInfoImpl no_libc(const llvm::Triple& triple) {
  llvm::TargetLibraryInfoImpl tlii(triple);
  tlii.disableAllFunctions();
  return tlii;
}

// A scratch directory removed with everything in it.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/tern-link-XXXXXX";
    if (::mkdtemp(pattern.data())) path = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

// Drops the polls inside innermost loops whose trip count is known when
// they start (scalar evolution can compute it), in code without exact
// points: such a loop runs a bounded number of iterations, and the poll
// before it (stable_points.cpp, enter_loop) keeps checkpoints close; the
// loop, free of the poll's slow path, can be vectorized. Loops holding a
// rewind target keep their polls: rewinding finds its way through them.
struct ElidePolls : llvm::PassInfoMixin<ElidePolls> {
  static bool calls_anything(const llvm::BasicBlock& bb, const llvm::Instruction* until) {
    for (const llvm::Instruction& inst : bb) {
      if (&inst == until) break;
      if (llvm::isa<llvm::CallBase>(inst) && !llvm::isa<llvm::IntrinsicInst>(inst)) return true;
    }
    return false;
  }

  // Whether `at` is entered only from a kept poll: its fast edge, and its
  // slow path's return when no checkpoint is taken.
  static bool follows_poll(llvm::BasicBlock* at, unsigned poll_kind,
                           const std::vector<llvm::BranchInst*>& dropped) {
    llvm::BranchInst* poll = nullptr;
    for (llvm::BasicBlock* pred : llvm::predecessors(at)) {
      auto* term = llvm::dyn_cast<llvm::BranchInst>(pred->getTerminator());
      if (term && term->isConditional() && term->getMetadata(poll_kind) &&
          slow_successor(*term) != at)
        poll = term;
    }
    if (!poll || std::find(dropped.begin(), dropped.end(), poll) != dropped.end()) return false;
    for (llvm::BasicBlock* pred : llvm::predecessors(at))
      if (pred != poll->getParent() && pred != slow_successor(*poll)) return false;
    return true;
  }

  // The polls before innermost loops that another poll (a header's or the
  // function entry's, not being dropped) runs just before, through a few
  // blocks without calls or loops: in the search loop of a Boyer-Moore-Horspool,
  // the outer loop's header poll, then the inner loop's. The one left gives
  // checkpoints the same reach; the dropped one's slow path kept every live
  // value of the outer loop alive in registers (its unwind stores them).
  static std::vector<llvm::BranchInst*>
  redundant_preloop_polls(llvm::Function& f, const std::vector<llvm::BranchInst*>& dropped) {
    const unsigned poll_kind = f.getContext().getMDKindID(kElidablePoll);
    const unsigned preloop_kind = f.getContext().getMDKindID(kPreloopPoll);
    std::vector<llvm::BranchInst*> found;
    for (llvm::BasicBlock& bb : f) {
      auto* br = llvm::dyn_cast<llvm::BranchInst>(bb.getTerminator());
      if (!br || !br->isConditional() || !br->getMetadata(preloop_kind)) continue;
      if (calls_anything(bb, br)) continue;
      llvm::BasicBlock* at = &bb;
      for (int hops = 0; hops < 8; ++hops) {
        if (follows_poll(at, poll_kind, dropped)) {
          found.push_back(br);
          break;
        }
        llvm::BasicBlock* pred = at->getSinglePredecessor();
        auto* term = pred ? llvm::dyn_cast<llvm::BranchInst>(pred->getTerminator()) : nullptr;
        // A conditional branch is fine: every path to `at` still passes the
        // blocks walked. A loop stops the walk (its header has two predecessors).
        if (!term || calls_anything(*pred, term)) break;
        at = pred;
      }
    }
    return found;
  }

  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager& fam) {
    auto& loops = fam.getResult<llvm::LoopAnalysis>(f);
    auto& scev = fam.getResult<llvm::ScalarEvolutionAnalysis>(f);
    const unsigned poll_kind = f.getContext().getMDKindID(kElidablePoll);
    const unsigned target_kind = f.getContext().getMDKindID(kRewindTarget);
    std::vector<llvm::BranchInst*> polls;
    for (llvm::Loop* loop : loops.getLoopsInPreorder()) {
      if (!loop->isInnermost()) continue;
      std::vector<llvm::BranchInst*> found;
      bool keep = false;
      for (llvm::BasicBlock* bb : loop->blocks()) {
        for (llvm::Instruction& inst : *bb) {
          if (inst.getMetadata(target_kind)) keep = true;
          if (auto* br = llvm::dyn_cast<llvm::BranchInst>(&inst);
              br && br->getMetadata(poll_kind)) {
            found.push_back(br);
          }
        }
      }
      if (keep || found.empty()) continue;
      // Bounded if some exit has a computable count, assuming (as the
      // vectorizer does, checking at run time) that its induction
      // variable does not wrap: the poll's own exits have none.
      llvm::SmallVector<const llvm::SCEVPredicate*, 4> assumptions;
      const bool bounded = !llvm::isa<llvm::SCEVCouldNotCompute>(
          scev.getPredicatedSymbolicMaxBackedgeTakenCount(loop, assumptions));
      if (bounded) polls.insert(polls.end(), found.begin(), found.end());
    }
    const std::vector<llvm::BranchInst*> redundant = redundant_preloop_polls(f, polls);
    polls.insert(polls.end(), redundant.begin(), redundant.end());
    if (polls.empty()) return llvm::PreservedAnalyses::all();
    std::vector<llvm::WeakVH> continuations;
    for (llvm::BranchInst* br : polls) {
      llvm::BasicBlock* from = br->getParent();
      llvm::BasicBlock* slow = slow_successor(*br);
      llvm::BasicBlock* on = fast_successor(*br);
      slow->removePredecessor(from);
      llvm::BranchInst::Create(on, br);
      continuations.emplace_back(on);
      auto* cond = llvm::dyn_cast<llvm::Instruction>(br->getCondition());
      br->eraseFromParent();
      // The flag's load is atomic, which dead-code elimination keeps.
      if (cond && cond->use_empty()) {
        auto* flag = llvm::dyn_cast<llvm::Instruction>(cond->getOperand(0));
        cond->eraseFromParent();
        if (flag && flag->use_empty()) flag->eraseFromParent();
      }
    }
    llvm::removeUnreachableBlocks(f);
    // A header whose poll is gone is only phis and a branch into the body.
    // Merged, the body's accesses are in the header, which is what lets
    // SCEV trust their addresses' nuw (poison there would be UB on every
    // iteration): without that the vectorizer cannot see that a[i] and
    // a[i+1] are adjacent, and scalarizes the stores of unrolled loops.
    for (llvm::WeakVH& on : continuations)
      if (auto* bb = llvm::cast_or_null<llvm::BasicBlock>(on)) llvm::MergeBlockIntoPredecessor(bb);
    return llvm::PreservedAnalyses::none();
  }
};

// Sums the address of an access without offset in 64 bits over its tree of
// i32.adds, at the memory's mirror views (runtime/memory.h): exact, and
// LLVM can then see strides and adjacent accesses (the vectorizers need
// both). Runs after mem2reg, when locals are values and an address's adds
// are visible. The mirror base is loaded on its own from the instance
// record: LLVM must not learn that it is base() plus a constant, or it
// would take accesses through the two for disjoint.
struct WidenAddresses : llvm::PassInfoMixin<WidenAddresses> {
  static llvm::Value* widen(llvm::IRBuilder<>& b, llvm::Value* v, int& budget) {
    auto* sum = llvm::dyn_cast<llvm::BinaryOperator>(v);
    if (budget >= 2 && sum && sum->getOpcode() == llvm::Instruction::Add &&
        sum->getType()->isIntegerTy(32)) {
      budget -= 1; // one term becomes two
      llvm::Value* lhs = widen(b, sum->getOperand(0), budget);
      llvm::Value* rhs = widen(b, sum->getOperand(1), budget);
      return b.CreateAdd(lhs, rhs, "", /*HasNUW=*/true, /*HasNSW=*/true);
    }
    return b.CreateZExt(v, b.getInt64Ty());
  }

  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager&) {
    const unsigned kind = f.getContext().getMDKindID(kWideAddress);
    std::vector<llvm::ZExtInst*> candidates;
    for (llvm::BasicBlock& bb : f)
      for (llvm::Instruction& inst : bb)
        if (auto* z = llvm::dyn_cast<llvm::ZExtInst>(&inst); z && z->getMetadata(kind))
          candidates.push_back(z);
    bool changed = false;
    for (llvm::ZExtInst* z : candidates) {
      auto* sum = llvm::dyn_cast<llvm::BinaryOperator>(z->getOperand(0));
      if (!sum || sum->getOpcode() != llvm::Instruction::Add) continue;
      for (llvm::User* user : llvm::make_early_inc_range(z->users())) {
        auto* gep = llvm::dyn_cast<llvm::GetElementPtrInst>(user);
        if (!gep || gep->getNumIndices() != 1 || gep->getOperand(1) != z) continue;
        auto* base = llvm::dyn_cast<llvm::LoadInst>(gep->getPointerOperand());
        if (!base) continue;
        llvm::IRBuilder<> at_base(base->getNextNode());
        llvm::Value* slot = at_base.CreateConstInBoundsGEP1_64(
            at_base.getInt8Ty(), base->getPointerOperand(), offsets::kInstMemMirror);
        llvm::LoadInst* mirror = at_base.CreateLoad(at_base.getPtrTy(), slot);
        mirror->copyMetadata(*base);
        llvm::IRBuilder<> b(gep);
        int budget = int(runtime::Memory::kMirrorViews);
        llvm::Value* wide = widen(b, sum, budget);
        gep->replaceAllUsesWith(b.CreateGEP(b.getInt8Ty(), mirror, wide));
        gep->eraseFromParent();
        changed = true;
      }
    }
    return changed ? llvm::PreservedAnalyses::none() : llvm::PreservedAnalyses::all();
  }
};

} // namespace

constexpr const char* kLlvmArgsVariable = "TERN_AOT_LLVM_ARGS";

void initialize_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmPrinter();
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64Target();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64AsmPrinter();
    LLVMInitializeSystemZTargetInfo();
    LLVMInitializeSystemZTarget();
    LLVMInitializeSystemZTargetMC();
    LLVMInitializeSystemZAsmPrinter();
    configure_codegen_layout();
    // For studying the optimizer: LLVM's own developer options, as opt and
    // llc take them (TERN_AOT_LLVM_ARGS="-print-before=loop-vectorize").
    if (std::getenv(kLlvmArgsVariable)) {
      const char* argv[] = {"tern"};
      llvm::cl::ParseCommandLineOptions(1, argv, "", nullptr, kLlvmArgsVariable);
    }
  });
}

Compiled<std::unique_ptr<llvm::TargetMachine>> make_target_machine(const Target& target,
                                                                   unsigned opt_level) {
  initialize_llvm();
  const std::string triple = triple_of(target.arch);
  std::string error;
  const llvm::Target* t = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!t) return {{}, fmt::format("no LLVM target for {}: {}", triple, error)};
  std::string cpu = target.cpu_or_default();
  std::string features;
  if (cpu == "native") {
    if (target.arch != host_target().arch)
      return {{}, "--cpu native needs the host's architecture"};
    cpu = llvm::sys::getHostCPUName().str();
    for (const auto& [name, on] : llvm::sys::getHostCPUFeatures())
      features += fmt::format("{}{},", on ? '+' : '-', name.str());
  }
  // LLVM only warns about a CPU it does not know (on stderr, once per
  // subtarget) and then may abort with "LLVM ERROR" while compiling.
  if (std::unique_ptr<llvm::MCSubtargetInfo> generic(t->createMCSubtargetInfo(triple, "", ""));
      generic && !generic->isCPUStringValid(cpu))
    return {{},
            fmt::format("unknown CPU '{}' for {} (give an LLVM CPU name, or native)", cpu,
                        arch_name(target.arch))};
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(
      t->createTargetMachine(triple, cpu, features, options, llvm::Reloc::PIC_,
                             llvm::CodeModel::Small, codegen_level(opt_level)));
  if (!tm) return {{}, fmt::format("LLVM cannot compile for {} (cpu {})", triple, cpu)};
  return {std::move(tm), {}};
}

bool optimize(llvm::Module& module, llvm::TargetMachine& machine, const CompileOptions& options) {
  const unsigned opt_level = options.opt_level;
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  // -print-before and friends (TERN_AOT_LLVM_ARGS) act through instrumentation.
  llvm::PassInstrumentationCallbacks callbacks;
  llvm::StandardInstrumentations instrumentations(module.getContext(), false);
  const bool instrumented = std::getenv(kLlvmArgsVariable) != nullptr;
  if (instrumented) instrumentations.registerCallbacks(callbacks, &mam);
  llvm::PassBuilder pb(&machine, llvm::PipelineTuningOptions(), std::nullopt,
                       instrumented ? &callbacks : nullptr);
  llvm::TargetLibraryInfoImpl tlii = no_libc(machine.getTargetTriple());
  fam.registerPass([&] { return llvm::TargetLibraryAnalysis(tlii); });
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  const bool widen = options.wide_addresses && !options.bounds_checks;
  const bool stable_points = options.stable_points;
  pb.registerPipelineStartEPCallback(
      [widen, stable_points](llvm::ModulePassManager& mpm, llvm::OptimizationLevel) {
        llvm::FunctionPassManager fpm;
        fpm.addPass(llvm::PromotePass());
        fpm.addPass(AccessNoWrap());
        if (widen) fpm.addPass(WidenAddresses());
        if (stable_points) fpm.addPass(HoldCallsBeforeTraps());
        mpm.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(fpm)));
      });
  const bool elide_polls = options.stable_points && !options.exact_points;
  pb.registerVectorizerStartEPCallback(
      [elide_polls](llvm::FunctionPassManager& fpm, llvm::OptimizationLevel) {
        if (elide_polls) fpm.addPass(ElidePolls());
        fpm.addPass(AddressInductions());
      });
  if (stable_points)
    pb.registerScalarOptimizerLateEPCallback(
        [](llvm::FunctionPassManager& fpm, llvm::OptimizationLevel) {
          fpm.addPass(DiscountSlowPaths());
          fpm.addPass(HoldCallsBeforeTraps());
        });
  llvm::ModulePassManager mpm = opt_level == 0
                                    ? pb.buildO0DefaultPipeline(llvm::OptimizationLevel::O0)
                                    : pb.buildPerModuleDefaultPipeline(pass_level(opt_level));
  mpm.run(module, mam);
  if (options.stable_points)
    for (llvm::Function& f : module)
      if (!f.isDeclaration() && !expand_saved_values(f)) return false;
  if (options.stable_points && opt_level > 0)
    for (llvm::Function& f : module) straighten_after_calls(f);
  return true;
}

namespace {

// Emits an optimized `module` as a relocatable object.
Compiled<std::vector<char>> emit_object(llvm::Module& module, llvm::TargetMachine& machine) {
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream out(buffer);
  llvm::legacy::PassManager pm;
  llvm::TargetLibraryInfoImpl tlii = no_libc(machine.getTargetTriple());
  pm.add(new llvm::TargetLibraryInfoWrapperPass(tlii));
  if (machine.addPassesToEmitFile(pm, out, nullptr, llvm::CodeGenFileType::ObjectFile))
    return {{}, "LLVM cannot emit an object file for this target"};
  pm.run(module);
  return {std::vector<char>(buffer.begin(), buffer.end()), {}};
}

// TERN_TRACE_TIME (util/trace_time.h, whose state the plugin's copy of
// tern_core does not share): the CPU time of the compile's serial steps
// and of each part, on stderr. The parts' busiest thread plus the serial
// steps is the compile's wall time on an idle machine with as many cores
// as threads.
bool tracing_time() {
  const char* env = std::getenv("TERN_TRACE_TIME");
  return env && *env && *env != '0';
}

double thread_cpu_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e3 + double(t.tv_nsec) / 1e6;
}

void trace_step(const char* step, double since_ms) {
  if (tracing_time())
    std::fprintf(stderr, "tern: compile %s: cpu %.1f ms\n", step, thread_cpu_ms() - since_ms);
}

// The CPU time of one part's two halves (TERN_TRACE_TIME).
struct PartTimes {
  double optimize_ms = 0, emit_ms = 0;
};

// One part (partition.h), in a context of its own.
Compiled<std::vector<char>> compile_part(std::span<const char> bitcode,
                                         const CompileOptions& options, PartTimes& times) {
  auto tm = make_target_machine(options.target, options.opt_level);
  if (!tm.ok()) return {{}, tm.error};
  llvm::LLVMContext context;
  llvm::MemoryBufferRef buffer(llvm::StringRef(bitcode.data(), bitcode.size()), "part");
  llvm::Expected<std::unique_ptr<llvm::Module>> module = llvm::parseBitcodeFile(buffer, context);
  if (!module)
    return {
        {}, "a part of the module does not read back: " + llvm::toString(module.takeError()), true};
  const double start = thread_cpu_ms();
  if (!optimize(**module, *tm.value, options))
    return {{}, "the optimizer lost a saved value's slot (compiler bug)", true};
  const double optimized = thread_cpu_ms();
  auto object = emit_object(**module, *tm.value);
  times = {optimized - start, thread_cpu_ms() - optimized};
  return object;
}

// The cores this process may run on (its affinity mask), or
// TERN_COMPILE_THREADS: 1 compiles the parts one after another.
unsigned compile_threads() {
  if (const char* forced = std::getenv("TERN_COMPILE_THREADS"); forced && std::atoi(forced) > 0)
    return unsigned(std::atoi(forced));
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return unsigned(std::max(1, CPU_COUNT(&set)));
  return std::max(1u, std::thread::hardware_concurrency());
}

// TERN_COMPILE_STOP_AFTER_PARTS=K (tests): the compile fails after
// compiling K parts, on one thread, as a compile cut short would; 0: never.
size_t stop_after_parts() {
  const char* v = std::getenv("TERN_COMPILE_STOP_AFTER_PARTS");
  return v && std::atoi(v) > 0 ? size_t(std::atoi(v)) : 0;
}

// Compiles the parts on up to compile_threads() threads, each taking the
// next part not yet started; a part kept in options.parts_dir by an
// earlier compile of the module is taken from there (part_cache.h).
Compiled<std::vector<std::vector<char>>>
compile_parts(const std::vector<llvm::SmallVector<char, 0>>& parts, const CompileOptions& options) {
  std::vector<Compiled<std::vector<char>>> objects(parts.size());
  std::vector<double> part_ms(parts.size());
  std::vector<PartTimes> part_times(parts.size());
  const PartCache kept(options.parts_dir);
  const size_t stop_after = stop_after_parts();
  std::atomic<size_t> next{0}, compiled{0}, reused{0};
  std::mutex busiest_mutex;
  double busiest_ms = 0; // the CPU time of the thread that worked longest
  auto worker = [&] {
    const double start = thread_cpu_ms();
    for (size_t i; (i = next.fetch_add(1)) < parts.size();) {
      if (auto object = kept.find(parts[i])) {
        objects[i] = {std::move(*object), {}};
        ++reused;
        continue;
      }
      if (stop_after && compiled.load() >= stop_after) {
        objects[i] = {{},
                      "stopped after compiling " + std::to_string(stop_after) +
                          " parts (TERN_COMPILE_STOP_AFTER_PARTS)"};
        continue;
      }
      const double part_start = thread_cpu_ms();
      objects[i] = compile_part(parts[i], options, part_times[i]);
      part_ms[i] = thread_cpu_ms() - part_start;
      if (objects[i].ok()) kept.keep(parts[i], objects[i].value);
      ++compiled;
    }
    std::lock_guard lock(busiest_mutex);
    busiest_ms = std::max(busiest_ms, thread_cpu_ms() - start);
  };
  // LLVM's developer options (-time-passes, -print-*) keep global state.
  const unsigned threads = std::getenv(kLlvmArgsVariable) || stop_after
                               ? 1u
                               : std::min<unsigned>(compile_threads(), unsigned(parts.size()));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (tracing_time()) {
    for (size_t i = 0; i < parts.size(); ++i)
      std::fprintf(stderr, "tern: compile part %zu: cpu %.1f ms (optimize %.1f, emit %.1f)\n", i,
                   part_ms[i], part_times[i].optimize_ms, part_times[i].emit_ms);
    std::fprintf(stderr,
                 "tern: compile parts: %zu on %u threads, busiest thread cpu %.1f ms, %zu kept "
                 "from an earlier compile\n",
                 parts.size(), threads, busiest_ms, reused.load());
  }
  std::vector<std::vector<char>> out;
  for (auto& object : objects) {
    if (!object.ok()) return {{}, object.error, object.internal};
    out.push_back(std::move(object.value));
  }
  return {std::move(out), {}};
}

// Runs lld (in-process, one link at a time: lld keeps global state) on
// `objects` written to a scratch directory, with `options` before them;
// returns the output file's bytes.
Compiled<std::vector<uint8_t>> run_lld(const std::vector<std::vector<char>>& objects,
                                       const std::vector<std::string>& options) {
  static std::mutex lld_mutex;
  std::lock_guard lock(lld_mutex);
  ScratchDir dir;
  if (dir.path.empty()) return {{}, "cannot create a scratch directory for linking"};
  const std::string out = dir.path + "/module.out";
  std::vector<std::string> inputs;
  try {
    for (size_t i = 0; i < objects.size(); ++i) {
      inputs.push_back(fmt::format("{}/part{}.o", dir.path, i));
      util::write_file_atomic(
          inputs.back(),
          std::span(reinterpret_cast<const uint8_t*>(objects[i].data()), objects[i].size()));
    }
  } catch (const std::exception& e) {
    return {{}, e.what()};
  }
  std::vector<const char*> args = {"ld.lld"};
  for (const std::string& o : options) args.push_back(o.c_str());
  args.push_back("-o");
  args.push_back(out.c_str());
  for (const std::string& in : inputs) args.push_back(in.c_str());
  std::string messages;
  llvm::raw_string_ostream diag(messages);
  lld::Result r = lld::lldMain(args, diag, diag, {{lld::Gnu, &lld::elf::link}});
  diag.flush();
  if (r.retCode != 0) return {{}, "linking the compiled module failed: " + messages};
  try {
    return {util::read_file(out), {}};
  } catch (const std::exception& e) {
    return {{}, e.what()};
  }
}

} // namespace

Compiled<std::vector<std::vector<char>>> compile_objects(const wasm::Module& wasm,
                                                         const util::Sha256Digest& hash,
                                                         const CompileOptions& options) {
  const double start = thread_cpu_ms();
  auto tm = make_target_machine(options.target, options.opt_level);
  if (!tm.ok()) return {{}, tm.error};
  llvm::LLVMContext context;
  std::unique_ptr<llvm::Module> module;
  try {
    ModuleCodegen codegen(context, wasm, hash, options, tm.value->createDataLayout(),
                          tm.value->getTargetTriple().str());
    module = codegen.run();
  } catch (const InternalError& e) {
    return {{}, e.what(), true};
  } catch (const std::exception& e) {
    return {{}, e.what()};
  }
  // For studying the generated code: TERN_AOT_DUMP_IR=PREFIX writes
  // PREFIX.ll (as generated) and PREFIX.opt.ll (optimized), of the module
  // compiled as one part.
  const char* dump = std::getenv("TERN_AOT_DUMP_IR");
  auto write_ir = [&](const char* suffix) {
    std::error_code ec;
    llvm::raw_fd_ostream out(std::string(dump) + suffix, ec);
    if (!ec) module->print(out, nullptr);
  };
  if (dump) write_ir(".ll");
  std::string verify_errors;
  llvm::raw_string_ostream verify_stream(verify_errors);
  if (llvm::verifyModule(*module, &verify_stream))
    return {{}, "the compiler generated invalid IR: " + verify_errors.substr(0, 2000), true};
  const unsigned parts = dump ? 1 : part_count(*module);
  if (parts == 1) {
    if (!optimize(*module, *tm.value, options))
      return {{}, "the optimizer lost a saved value's slot (compiler bug)", true};
    if (dump) write_ir(".opt.ll");
    auto object = emit_object(*module, *tm.value);
    trace_step("whole module (IR, optimization, emission)", start);
    if (!object.ok()) return {{}, object.error, object.internal};
    return {{std::move(object.value)}, {}};
  }
  const std::vector<llvm::SmallVector<char, 0>> bitcode = split_module(*module, parts);
  module.reset();
  trace_step("IR and split (serial)", start);
  return compile_parts(bitcode, options);
}

Compiled<std::vector<char>> compile_object(const wasm::Module& wasm, const util::Sha256Digest& hash,
                                           const CompileOptions& options) {
  auto objects = compile_objects(wasm, hash, options);
  if (!objects.ok()) return {{}, objects.error, objects.internal};
  if (objects.value.size() == 1) return {std::move(objects.value[0]), {}};
  // One relocatable object of all parts.
  const double start = thread_cpu_ms();
  auto merged = run_lld(objects.value, {"-r"});
  trace_step("merge (serial)", start);
  if (!merged.ok()) return {{}, merged.error, merged.internal};
  return {std::vector<char>(merged.value.begin(), merged.value.end()), {}};
}

Compiled<std::vector<uint8_t>> link_shared_object(const std::vector<std::vector<char>>& objects) {
  const double start = thread_cpu_ms();
  auto linked = run_lld(objects, {"-shared", "--no-undefined", "-Bsymbolic", "--build-id=none",
                                  "-z", "noexecstack", "--hash-style=gnu",
                                  std::string("--entry=") + kModuleInfoSymbol});
  trace_step("link (serial)", start);
  return linked;
}

} // namespace tern::aot::llvmc
