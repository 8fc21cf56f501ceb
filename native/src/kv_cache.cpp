#include "kv_cache.h"

#include <algorithm>
#include <string>

#include "error.h"

namespace hw {

KvCache::KvCache(int page_tokens) : page_tokens_(page_tokens) {}

int KvCache::create_block() {
  int id;
  if (!free_blocks_.empty()) {
    id = free_blocks_.back();
    free_blocks_.pop_back();
  } else {
    id = int(blocks_.size());
    blocks_.emplace_back();
  }
  blocks_[id] = Block{true, 0, {}};
  return id;
}

bool KvCache::valid(int block) const {
  return block >= 0 && block < int(blocks_.size()) && blocks_[block].live;
}

static void check_block(const KvCache& c, int block) {
  if (!c.valid(block)) fail("kv cache", "no block " + std::to_string(block));
}

int KvCache::fork_block(int src) {
  check_block(*this, src);
  Block copy = blocks_[src];
  for (int p : copy.pages) page_refs_[p]++;
  int id = create_block();
  blocks_[id] = copy;
  return id;
}

void KvCache::release_block(int block) {
  check_block(*this, block);
  for (int p : blocks_[block].pages) unref_page(p);
  blocks_[block] = Block{};
  free_blocks_.push_back(block);
}

int KvCache::length(int block) const {
  check_block(*this, block);
  return blocks_[block].length;
}

const std::vector<int>& KvCache::pages(int block) const {
  check_block(*this, block);
  return blocks_[block].pages;
}

Slot KvCache::slot(int block, int index) const {
  const Block& b = blocks_[block];
  return Slot{b.pages[index / page_tokens_], index % page_tokens_};
}

int KvCache::new_page() {
  if (!free_pages_.empty()) {
    int p = free_pages_.back();
    free_pages_.pop_back();
    page_refs_[p] = 1;
    return p;
  }
  page_refs_.push_back(1);
  return int(page_refs_.size()) - 1;
}

void KvCache::unref_page(int page) {
  if (--page_refs_[page] == 0) free_pages_.push_back(page);
}

void KvCache::reserve(int block, int n, std::vector<TokenMove>& copies) {
  check_block(*this, block);
  Block& b = blocks_[block];
  // A partly filled last page that another block also references must be copied before we
  // write into it: the other block owns the tokens already there, not the free slots.
  int used_in_last = b.length % page_tokens_;
  if (n > 0 && used_in_last != 0 && page_refs_[b.pages.back()] > 1) {
    int old_page = b.pages.back();
    int fresh = new_page();
    for (int i = 0; i < used_in_last; i++) copies.push_back({{old_page, i}, {fresh, i}});
    unref_page(old_page);
    b.pages.back() = fresh;
  }
  int needed = (b.length + n + page_tokens_ - 1) / page_tokens_;
  while (int(b.pages.size()) < needed) b.pages.push_back(new_page());
}

void KvCache::commit(int block, int n) {
  check_block(*this, block);
  Block& b = blocks_[block];
  if ((b.length + n + page_tokens_ - 1) / page_tokens_ > int(b.pages.size()))
    fail("kv cache", "commit past the reserved pages of block " + std::to_string(block));
  b.length += n;
}

void KvCache::truncate(int block, int length) {
  check_block(*this, block);
  Block& b = blocks_[block];
  b.length = std::min(b.length, length);
  int needed = (b.length + page_tokens_ - 1) / page_tokens_;
  while (int(b.pages.size()) > needed) {
    unref_page(b.pages.back());
    b.pages.pop_back();
  }
}

int KvCache::pages_in_use() const {
  int n = 0;
  for (int r : page_refs_) n += r > 0;
  return n;
}

}  // namespace hw
