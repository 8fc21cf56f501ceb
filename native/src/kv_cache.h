// Host-side bookkeeping of the paged KV cache: blocks made of fixed-size pages.
// The page storage itself lives in the backend (host or device memory); this class only
// decides which page holds which token, and shares pages between forks copy-on-write.
#pragma once
#include <cstdint>
#include <vector>

namespace hw {

// Where one token of a block lives.
struct Slot {
  int page;   // page index in the backend's storage
  int index;  // token index inside that page
};

// One token moved between two slots, its key rotated `delta` positions further on the way.
struct TokenMove {
  Slot src, dst;
};

class KvCache {
 public:
  explicit KvCache(int page_tokens = 32);

  int page_tokens() const { return page_tokens_; }

  int create_block();             // a new, empty block
  int fork_block(int src);        // a block sharing all of src's pages (nothing copied)
  void release_block(int block);  // frees pages no other block uses
  bool valid(int block) const;
  int length(int block) const;
  Slot slot(int block, int index) const;  // where token `index` of a block lives
  const std::vector<int>& pages(int block) const;

  // Makes room for n more tokens at the end of `block`. A shared last page is first
  // copied (copy-on-write): the moves to perform are appended to `copies`.
  void reserve(int block, int n, std::vector<TokenMove>& copies);
  // Counts n reserved tokens as written.
  void commit(int block, int n);
  // Drops the tokens past `length` (for undoing a reserve that was never written).
  void truncate(int block, int length);

  int pages_in_use() const;                                       // distinct pages referenced by live blocks
  int pages_allocated() const { return int(page_refs_.size()); }  // storage the backend must hold

 private:
  struct Block {
    bool live = false;
    int length = 0;
    std::vector<int> pages;
  };
  int new_page();
  void unref_page(int page);

  int page_tokens_;
  std::vector<Block> blocks_;
  std::vector<int> page_refs_;  // reference count per page; 0 = free
  std::vector<int> free_pages_;
  std::vector<int> free_blocks_;
};

}  // namespace hw
