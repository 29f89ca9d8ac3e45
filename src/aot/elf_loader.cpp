#include "aot/elf_loader.h"

#include "tern/error.h"

#include <bit>
#include <cstring>
#include <elf.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace tern::aot {
namespace {

#if defined(__x86_64__)
constexpr uint16_t kMachine = EM_X86_64;
constexpr uint32_t kRelative = R_X86_64_RELATIVE;
#elif defined(__aarch64__)
constexpr uint16_t kMachine = EM_AARCH64;
constexpr uint32_t kRelative = R_AARCH64_RELATIVE;
#elif defined(__s390x__)
constexpr uint16_t kMachine = EM_S390;
constexpr uint32_t kRelative = R_390_RELATIVE;
#endif
constexpr uint8_t kNativeData =
    std::endian::native == std::endian::little ? ELFDATA2LSB : ELFDATA2MSB;

// An anonymous mapping, released however construction ends. Not copyable:
// a copy (even a temporary one, as `mapping = {base, size}` makes) would
// unmap the pages while they are in use.
class Mapping {
public:
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (base_) ::munmap(base_, size_);
  }
  void adopt(uint8_t* base, uint64_t size) {
    base_ = base;
    size_ = size;
  }

private:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

class ElfImage final : public CodeImage {
public:
  ElfImage(std::span<const uint8_t> file, const std::string& name) : file_(file), name_(name) {
    read_headers();
    map_segments();
    relocate();
    attach(reinterpret_cast<ModuleInfo*>(at(ehdr_.e_entry, sizeof(ModuleInfo))));
    protect();
  }

private:
  Error refuse(const std::string& why) const {
    return Error(fmt::format("{}: not loadable compiled code: {}", name_, why));
  }
  // The image address of [vaddr, vaddr + len), checked to be inside it.
  uint8_t* at(uint64_t vaddr, uint64_t len) const {
    if (vaddr > span_ || len > span_ - vaddr) throw refuse("an address points outside the image");
    return base_ + vaddr;
  }

  void read_headers() {
    if (file_.size() < sizeof(Elf64_Ehdr)) throw refuse("too short for an ELF header");
    std::memcpy(&ehdr_, file_.data(), sizeof ehdr_);
    if (std::memcmp(ehdr_.e_ident, ELFMAG, SELFMAG) != 0) throw refuse("no ELF signature");
    if (ehdr_.e_ident[EI_CLASS] != ELFCLASS64 || ehdr_.e_ident[EI_DATA] != kNativeData)
      throw refuse("ELF class or byte order of another machine");
    if (ehdr_.e_machine != kMachine) throw refuse("compiled for another machine");
    if (ehdr_.e_type != ET_DYN) throw refuse("not a shared object");
    if (ehdr_.e_phentsize != sizeof(Elf64_Phdr) || ehdr_.e_phoff > file_.size() ||
        uint64_t(ehdr_.e_phnum) * sizeof(Elf64_Phdr) > file_.size() - ehdr_.e_phoff)
      throw refuse("program headers out of range");
    phdrs_.resize(ehdr_.e_phnum);
    std::memcpy(phdrs_.data(), file_.data() + ehdr_.e_phoff, phdrs_.size() * sizeof(Elf64_Phdr));
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    for (const Elf64_Phdr& p : phdrs_) {
      if (p.p_type == PT_INTERP) throw refuse("it asks for a program interpreter");
      if (p.p_type != PT_LOAD) continue;
      if (p.p_filesz > p.p_memsz || p.p_offset > file_.size() ||
          p.p_filesz > file_.size() - p.p_offset)
        throw refuse("a segment lies outside the file");
      if (p.p_vaddr + p.p_memsz < p.p_vaddr) throw refuse("a segment wraps around");
      span_ = std::max(span_, (p.p_vaddr + p.p_memsz + page - 1) / page * page);
    }
    if (span_ == 0 || span_ > (uint64_t(1) << 32)) throw refuse("no loadable segments");
  }

  void map_segments() {
    void* p = ::mmap(nullptr, span_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw refuse("cannot map memory for it");
    base_ = static_cast<uint8_t*>(p);
    mapping_.adopt(base_, span_);
    for (const Elf64_Phdr& ph : phdrs_)
      if (ph.p_type == PT_LOAD && ph.p_filesz)
        std::memcpy(at(ph.p_vaddr, ph.p_filesz), file_.data() + ph.p_offset, ph.p_filesz);
  }

  // Only RELATIVE relocations: everything the code refers to is inside it.
  void relocate() {
    const Elf64_Phdr* dynamic = nullptr;
    for (const Elf64_Phdr& p : phdrs_)
      if (p.p_type == PT_DYNAMIC) dynamic = &p;
    if (!dynamic) return;
    uint64_t rela = 0, rela_size = 0, rela_ent = sizeof(Elf64_Rela);
    const size_t count = dynamic->p_memsz / sizeof(Elf64_Dyn);
    auto* dyn = reinterpret_cast<const Elf64_Dyn*>(at(dynamic->p_vaddr, count * sizeof(Elf64_Dyn)));
    for (size_t i = 0; i < count && dyn[i].d_tag != DT_NULL; ++i) {
      switch (dyn[i].d_tag) {
      case DT_NEEDED:
        throw refuse("it needs other libraries");
      case DT_REL:
      case DT_TEXTREL:
        throw refuse("it has relocations of a kind tern does not apply");
      case DT_PLTRELSZ:
        if (dyn[i].d_un.d_val != 0) throw refuse("it calls functions outside itself");
        break;
      case DT_RELA:
        rela = dyn[i].d_un.d_ptr;
        break;
      case DT_RELASZ:
        rela_size = dyn[i].d_un.d_val;
        break;
      case DT_RELAENT:
        rela_ent = dyn[i].d_un.d_val;
        break;
      default:
        break;
      }
    }
    if (rela_ent != sizeof(Elf64_Rela)) throw refuse("unexpected relocation entry size");
    auto* relocs = reinterpret_cast<const Elf64_Rela*>(at(rela, rela_size));
    for (size_t i = 0; i < rela_size / sizeof(Elf64_Rela); ++i) {
      const Elf64_Rela& r = relocs[i];
      if (ELF64_R_TYPE(r.r_info) != kRelative || ELF64_R_SYM(r.r_info) != 0)
        throw refuse(
            fmt::format("relocation type {} refers outside the code", ELF64_R_TYPE(r.r_info)));
      uint64_t value = reinterpret_cast<uint64_t>(base_) + uint64_t(r.r_addend);
      std::memcpy(at(r.r_offset, sizeof value), &value, sizeof value);
    }
  }

  void protect() {
    const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
    auto apply = [&](uint64_t vaddr, uint64_t size, int prot) {
      uint64_t begin = vaddr / page * page;
      uint64_t end = (vaddr + size + page - 1) / page * page;
      if (end > begin && ::mprotect(base_ + begin, end - begin, prot) != 0)
        throw refuse("cannot set page protections");
    };
    for (const Elf64_Phdr& p : phdrs_) {
      if (p.p_type != PT_LOAD) continue;
      int prot = 0;
      if (p.p_flags & PF_R) prot |= PROT_READ;
      if (p.p_flags & PF_W) prot |= PROT_WRITE;
      if (p.p_flags & PF_X) {
        prot |= PROT_EXEC;
        __builtin___clear_cache(reinterpret_cast<char*>(base_ + p.p_vaddr),
                                reinterpret_cast<char*>(base_ + p.p_vaddr + p.p_memsz));
      }
      apply(p.p_vaddr, p.p_memsz, prot);
    }
    for (const Elf64_Phdr& p : phdrs_)
      if (p.p_type == PT_GNU_RELRO) {
        // Only whole pages inside the range become read-only.
        uint64_t begin = (p.p_vaddr + page - 1) / page * page;
        uint64_t end = (p.p_vaddr + p.p_memsz) / page * page;
        if (end > begin) ::mprotect(base_ + begin, end - begin, PROT_READ);
      }
  }

  std::span<const uint8_t> file_;
  std::string name_;
  Elf64_Ehdr ehdr_{};
  std::vector<Elf64_Phdr> phdrs_;
  uint8_t* base_ = nullptr;
  uint64_t span_ = 0;
  Mapping mapping_;
};

} // namespace

std::unique_ptr<CodeImage> load_elf_image(std::span<const uint8_t> image, const std::string& name) {
  return std::make_unique<ElfImage>(image, name);
}

} // namespace tern::aot
