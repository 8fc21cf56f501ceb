// The CPU backend's KV pages, each its own anonymous mapping of exactly its bytes (rounded
// to the OS page). From malloc, a page (3.7 MB on the built-in model) is a mapping with a
// 16-byte header in front, so it spans one OS page more: 4 MB resident per thousand pages.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace hw::cpu {

class KvPages {
 public:
  KvPages() = default;
  KvPages(const KvPages&) = delete;
  KvPages& operator=(const KvPages&) = delete;
  ~KvPages() {
    for (const void* p : ptrs_) ::munmap(const_cast<void*>(p), mapped_);
  }

  // Pages of `bytes` each; only before the first add().
  void set_page_bytes(size_t bytes) {
    const size_t os_page = size_t(::sysconf(_SC_PAGESIZE));
    mapped_ = (bytes + os_page - 1) / os_page * os_page;
  }

  // One more page, zero until written (the kernel maps memory in as it is first touched).
  void add() {
    void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ptrs_.push_back(p);
  }

  size_t size() const { return ptrs_.size(); }
  uint8_t* operator[](size_t i) const { return static_cast<uint8_t*>(const_cast<void*>(ptrs_[i])); }
  const void* const* data() const { return ptrs_.data(); }  // in the form the attention op reads

 private:
  size_t mapped_ = 0;
  std::vector<const void*> ptrs_;
};

}  // namespace hw::cpu
