// Which parts of an anonymous mapping were ever touched, from
// /proc/self/pagemap: a page of a private anonymous mapping that is neither
// present nor swapped out was never written and reads as zero. Lets a
// snapshot skip untouched memory without reading (and faulting in) it.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace tern::util {

// For each `block`-byte block of [base, base + len): whether any host page
// in it is present or swapped. `base` and `block` must be multiples of the
// host page size. nullopt when the page map cannot be read or does not
// describe this process's addresses (not Linux, /proc not mounted, a
// user-mode emulator such as qemu-user), or when the environment has
// TERN_PAGEMAP=0: then every block must be assumed touched.
std::optional<std::vector<bool>> touched_blocks(const void* base, size_t len, size_t block);

} // namespace tern::util
