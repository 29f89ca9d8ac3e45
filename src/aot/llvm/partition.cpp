#include "aot/llvm/partition.h"

#include <algorithm>
#include <cstdlib>
#include <llvm/ADT/DenseMap.h>
#include <llvm/ADT/DenseSet.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/IR/Instructions.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/Utils/Cloning.h>
#include <llvm/Transforms/Utils/ValueMapper.h>
#include <string>

namespace tern::aot::llvmc {
namespace {

// IR instructions per part: a part's fixed cost (its target machine and
// pipeline, the bitcode round trip) is a few milliseconds, its compile
// time some seconds.
constexpr size_t kPartInstructions = 8000;
constexpr unsigned kMaxParts = 16;
// A callee defined in another part is copied into the caller's when it is
// at most this large (the inliner takes larger ones only when its cold
// stable-point blocks make up the difference, inline_cost.h), and so are
// its own callees, one level further: deeper chains are cut.
constexpr size_t kImportInstructions = 400;
constexpr int kImportDepth = 2;

size_t instruction_count(const llvm::Function& f) {
  size_t n = 0;
  for (const llvm::BasicBlock& bb : f) n += bb.size();
  return n;
}

// Internal symbols become hidden external ones (named, if they were not),
// so that a part refers to what another part defines.
void externalize(llvm::Module& module) {
  unsigned unnamed = 0;
  auto make_visible = [&](llvm::GlobalValue& gv) {
    if (gv.isDeclaration() || !gv.hasLocalLinkage()) return;
    if (!gv.hasName()) gv.setName("tern.anon." + std::to_string(unnamed++));
    gv.setLinkage(llvm::GlobalValue::ExternalLinkage);
    gv.setVisibility(llvm::GlobalValue::HiddenVisibility);
  };
  for (llvm::Function& f : module) make_visible(f);
  for (llvm::GlobalVariable& g : module.globals()) make_visible(g);
}

std::vector<const llvm::Function*> direct_callees(const llvm::Function& f) {
  std::vector<const llvm::Function*> out;
  for (const llvm::BasicBlock& bb : f)
    for (const llvm::Instruction& inst : bb)
      if (auto* call = llvm::dyn_cast<llvm::CallBase>(&inst))
        if (const llvm::Function* callee = call->getCalledFunction();
            callee && !callee->isDeclaration())
          out.push_back(callee);
  return out;
}

struct Plan {
  llvm::DenseMap<const llvm::Function*, unsigned> owner;
  std::vector<llvm::DenseSet<const llvm::Function*>> imports;
};

Plan plan_parts(const llvm::Module& module, unsigned parts) {
  Plan plan;
  plan.imports.resize(parts);
  llvm::DenseMap<const llvm::Function*, size_t> size;
  size_t total = 0;
  for (const llvm::Function& f : module)
    if (!f.isDeclaration()) total += size[&f] = instruction_count(f);
  // Contiguous runs: a module's functions are in wasm's order, and a
  // compiler places callers near their callees.
  size_t done = 0;
  for (const llvm::Function& f : module) {
    if (f.isDeclaration()) continue;
    plan.owner[&f] =
        std::min<unsigned>(parts - 1, unsigned(done * parts / std::max<size_t>(total, 1)));
    done += size[&f];
  }
  for (const llvm::Function& f : module) {
    if (f.isDeclaration()) continue;
    const unsigned part = plan.owner[&f];
    std::vector<std::pair<const llvm::Function*, int>> work = {{&f, 0}};
    while (!work.empty()) {
      auto [from, depth] = work.back();
      work.pop_back();
      if (depth == kImportDepth) continue;
      for (const llvm::Function* callee : direct_callees(*from)) {
        if (plan.owner[callee] == part || size[callee] > kImportInstructions ||
            callee->hasFnAttribute(llvm::Attribute::NoInline))
          continue;
        if (plan.imports[part].insert(callee).second) work.push_back({callee, depth + 1});
      }
    }
  }
  return plan;
}

} // namespace

unsigned part_count(const llvm::Module& module) {
  // For tests: every module split, even one too small to gain from it.
  if (const char* forced = std::getenv("TERN_COMPILE_PARTS"); forced && std::atoi(forced) > 0)
    return unsigned(std::min(std::atoi(forced), int(kMaxParts)));
  size_t total = 0;
  for (const llvm::Function& f : module) total += instruction_count(f);
  return unsigned(std::clamp<size_t>(total / kPartInstructions, 1, kMaxParts));
}

std::vector<llvm::SmallVector<char, 0>> split_module(llvm::Module& module, unsigned parts) {
  externalize(module);
  const Plan plan = plan_parts(module, parts);
  std::vector<llvm::SmallVector<char, 0>> out(parts);
  for (unsigned part = 0; part < parts; ++part) {
    const auto& imports = plan.imports[part];
    llvm::ValueToValueMapTy map;
    std::unique_ptr<llvm::Module> clone =
        llvm::CloneModule(module, map, [&](const llvm::GlobalValue* gv) {
          if (auto* f = llvm::dyn_cast<llvm::Function>(gv))
            return plan.owner.lookup(f) == part || imports.contains(f);
          return part == 0; // every global variable lives in the first part
        });
    for (const llvm::Function* f : imports)
      llvm::cast<llvm::Function>(map[f])->setLinkage(llvm::GlobalValue::AvailableExternallyLinkage);
    llvm::raw_svector_ostream stream(out[part]);
    llvm::WriteBitcodeToFile(*clone, stream);
  }
  return out;
}

} // namespace tern::aot::llvmc
