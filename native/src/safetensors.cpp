#include "safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "json.h"

namespace hw {

namespace {

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string range_str(uint64_t a, uint64_t b) {
  return "[" + std::to_string(a) + "," + std::to_string(b) + ")";
}

bool parse_dtype(const std::string& s, DType& out) {
  if (s == "F32")
    out = DType::F32;
  else if (s == "F16")
    out = DType::F16;
  else if (s == "BF16")
    out = DType::BF16;
  else
    return false;
  return true;
}

}  // namespace

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, "file is " + std::to_string(size) +
                   " bytes, too short for a safetensors file (the header length alone takes 8)");
  }
  // Read-only and private: the weights are never written, and pages are shared with the page cache.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) fail(path, std::string("cannot map (") + std::strerror(err) + ")");
  map_ = p;
  map_size_ = size;
  try {
    tensors_ = parse_header(static_cast<const uint8_t*>(map_), map_size_, path_);
  } catch (...) {
    // The destructor does not run for a half-built object: release the mapping here.
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

std::map<std::string, Tensor> SafeTensorsFile::parse_header(const uint8_t* bytes, size_t size,
                                                            const std::string& path) {
  if (size < 8)
    fail(path, "file is " + std::to_string(size) +
                   " bytes, too short for a safetensors file (the header length alone takes 8)");
  std::map<std::string, Tensor> tensors;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian u64
  uint64_t after_len = size - 8;
  if (header_len > after_len)
    fail(path, "header claims " + std::to_string(header_len) + " bytes but the file holds " +
                   std::to_string(after_len) +
                   " after its 8-byte length field (truncated, or not a safetensors file?)");

  std::string text(reinterpret_cast<const char*>(bytes + 8), size_t(header_len));
  Json header = Json::parse(text, path + " (header)");
  if (!header.is_object()) fail(path, "the header is not a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  uint64_t data_size = after_len - header_len;

  struct Range {
    uint64_t begin, end;
    const std::string* name;
  };
  std::vector<Range> ranges;
  for (const Json::Member& m : header.items()) {
    const std::string& name = m.first;
    if (name == "__metadata__") continue;  // free-form string map, nothing we need
    const Json& e = m.second;
    std::string what = "tensor '" + name + "'";
    if (!e.is_object()) fail(path, what + ": header entry is not an object");

    const Json* dt = e.get("dtype");
    if (!dt || !dt->is_string()) fail(path, what + ": missing dtype");
    DType dtype;
    if (!parse_dtype(dt->as_string(), dtype))
      fail(path, what + " has dtype " + dt->as_string() + "; supported: F32, F16, BF16");

    const Json* sh = e.get("shape");
    if (!sh || !sh->is_array()) fail(path, what + ": missing shape");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    bool overflow = false;
    for (const Json& d : sh->as_array()) {
      if (!d.is_int() || d.as_int() < 0) fail(path, what + ": shape must list non-negative integers");
      shape.push_back(d.as_int());
      overflow |= __builtin_mul_overflow(numel, uint64_t(d.as_int()), &numel);
    }

    const Json* off = e.get("data_offsets");
    if (!off || !off->is_array() || off->size() != 2 || !off->as_array()[0].is_int() || !off->as_array()[1].is_int() ||
        off->as_array()[0].as_int() < 0 || off->as_array()[1].as_int() < off->as_array()[0].as_int())
      fail(path, what + ": data_offsets must be [begin, end] with 0 <= begin <= end");
    uint64_t begin = uint64_t(off->as_array()[0].as_int());
    uint64_t end = uint64_t(off->as_array()[1].as_int());
    if (end > data_size)
      fail(path, what + " needs bytes " + range_str(begin, end) + " but the data section holds only " +
                     std::to_string(data_size) + " bytes (truncated file?)");
    uint64_t nbytes = 0;
    overflow |= __builtin_mul_overflow(numel, uint64_t(dtype_size(dtype)), &nbytes);
    if (overflow || nbytes != end - begin)
      fail(path, what + " has dtype " + dtype_name(dtype) + " and shape " + shape_str(shape) + " (" +
                     (overflow ? std::string("too many") : std::to_string(nbytes)) + " bytes) but its data_offsets " +
                     range_str(begin, end) + " span " + std::to_string(end - begin) + " bytes");

    Tensor t;
    t.name = name;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.data = data + begin;
    auto it = tensors.emplace(name, std::move(t)).first;
    ranges.push_back({begin, end, &it->first});
  }

  // Two tensors sharing bytes means a corrupt header (the format forbids it).
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Range& a = ranges[i - 1];
    const Range& b = ranges[i];
    if (a.end > b.begin && a.begin < a.end && b.begin < b.end)
      fail(path, "tensors '" + *a.name + "' and '" + *b.name + "' overlap in the data section");
  }
  return tensors;
}

// ---- CheckpointFiles ----

CheckpointFiles::CheckpointFiles(const std::string& dir) : dir_(dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) fail(dir, "model folder does not exist");
  if (!S_ISDIR(st.st_mode)) fail(dir, "not a folder");

  const std::string single = join(dir, "model.safetensors");
  const std::string index = join(dir, "model.safetensors.index.json");
  if (is_file(single)) {
    source_ = "model.safetensors";
    add_file(single);
    return;
  }
  if (is_file(index)) {
    source_ = "model.safetensors.index.json";
    Json j = Json::parse_file(index);
    const Json* map = j.is_object() ? j.get("weight_map") : nullptr;
    if (!map || !map->is_object()) fail(index, "missing object 'weight_map'");
    std::vector<std::string> shards;  // in first-mention order, each once
    std::set<std::string> seen;
    for (const Json::Member& m : map->items()) {
      if (!m.second.is_string()) fail(index, "weight_map entry '" + m.first + "' is not a file name");
      if (seen.insert(m.second.as_string()).second) shards.push_back(m.second.as_string());
    }
    for (const std::string& shard : shards) {
      if (!is_file(join(dir, shard))) fail(index, "names shard '" + shard + "', which is missing from " + dir);
      add_file(join(dir, shard));
    }
    for (const Json::Member& m : map->items()) {
      auto it = index_.find(m.first);
      if (it == index_.end() || it->second.second->path() != join(dir, m.second.as_string()))
        fail(index, "says tensor '" + m.first + "' is in shard '" + m.second.as_string() +
                        "', but that shard has no such tensor");
    }
    return;
  }

  // No standard name: accept a lone *.safetensors file (hand-made or renamed checkpoints).
  std::vector<std::string> found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      const std::string ext = ".safetensors";
      if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0 &&
          is_file(join(dir, name)))
        found.push_back(name);
    }
    ::closedir(d);
  }
  if (found.size() == 1) {
    source_ = found[0];
    add_file(join(dir, found[0]));
    return;
  }
  std::string msg = "no model.safetensors or model.safetensors.index.json";
  if (found.size() > 1) msg += " (and " + std::to_string(found.size()) + " other .safetensors files without an index)";
  fail(dir, msg);
}

void CheckpointFiles::add_file(const std::string& path) {
  files_.push_back(std::make_unique<SafeTensorsFile>(path));
  const SafeTensorsFile* f = files_.back().get();
  for (const auto& kv : f->tensors()) {
    auto [it, fresh] = index_.emplace(kv.first, std::make_pair(&kv.second, f));
    if (!fresh) fail(path, "tensor '" + kv.first + "' is also in " + it->second.second->path());
  }
}

const Tensor* CheckpointFiles::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.first;
}

const Tensor& CheckpointFiles::require(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(dir_, "missing tensor '" + name + "' (not in " + source_ + ")");
  const Tensor& t = *it->second.first;
  if (t.shape != shape)
    fail(it->second.second->path(),
         "tensor '" + name + "' has shape " + shape_str(t.shape) + ", expected " + shape_str(shape));
  return t;
}

std::string CheckpointFiles::file_of(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? std::string() : it->second.second->path();
}

void SafeTensorsFile::read_into_memory(size_t begin, size_t end) const {
  end = std::min(end, map_size_);
  if (begin >= end) return;
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  begin = begin / page * page;
  const char* base = static_cast<const char*>(map_);
#ifdef MADV_POPULATE_READ
  // One call faults the whole range in (Linux 5.14+); older kernels say EINVAL.
  if (::madvise(const_cast<char*>(base) + begin, end - begin, MADV_POPULATE_READ) == 0) return;
#endif
  ::madvise(const_cast<char*>(base) + begin, end - begin, MADV_WILLNEED);
  unsigned char sum = 0;
  for (size_t i = begin; i < end; i += page) sum ^= static_cast<unsigned char>(base[i]);  // one read per page
  volatile unsigned char keep = sum;                                                      // not optimised away
  (void)keep;
}

void CheckpointFiles::read_into_memory(const std::function<void(size_t done)>& progress) const {
  constexpr size_t kSlice = size_t(64) << 20;
  size_t done = 0;
  for (const auto& f : files_) {
    for (size_t at = 0; at < f->mapped_bytes(); at += kSlice) {
      const size_t end = std::min(f->mapped_bytes(), at + kSlice);
      f->read_into_memory(at, end);
      done += end - at;
      if (progress) progress(done);
    }
  }
}

size_t CheckpointFiles::mapped_bytes() const {
  size_t n = 0;
  for (const auto& f : files_) n += f->mapped_bytes();
  return n;
}

}  // namespace hw
