#include "model.h"

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "error.h"
#include "prefill_pacer.h"

namespace hw {

namespace {

// The kernel's MemAvailable in bytes; infinity when unknown.
double memory_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (f >> key >> kb) {
    if (key == "MemAvailable:") return kb * 1024.0;
    f.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return std::numeric_limits<double>::infinity();
}

// Reads the mapped weight files into memory in slices, reporting each: the disk reads of a
// large model happen here, visibly, instead of inside the first forward. Files that would
// not fit in the available memory are left to be read on use (reading them all would evict
// their own first part again).
void read_weight_files(const CheckpointFiles& files, const LoadProgress& progress) {
  const double total = double(files.mapped_bytes());
  if (total > 0.8 * memory_available()) return;
  if (progress) progress("read", 0, total);
  files.read_into_memory([&](size_t done) {
    if (progress) progress("read", double(done), total);
  });
}

}  // namespace

std::unique_ptr<Model> Model::load(const std::string& dir, const BackendOptions& opt, const LoadProgress& progress) {
  std::unique_ptr<Model> m(new Model());
  m->cfg_ = load_config(dir);
  m->weights_ = load_weights(dir, m->cfg_);
  read_weight_files(*m->weights_.files, progress);
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  m->pool_ = std::make_unique<par::Pool>(opt.threads > 0 ? opt.threads : cores);
  m->make_backend(opt, progress);
  return m;
}

std::unique_ptr<Model> Model::random(const ModelConfig& cfg, const BackendOptions& opt) {
  if (opt.device != "cuda") fail("random model", "weights generated on the device need --device cuda");
  if (opt.random_weights_seed == 0) fail("random model", "a nonzero random_weights_seed is needed");
  std::unique_ptr<Model> m(new Model());
  m->cfg_ = cfg;
  m->make_backend(opt);
  return m;
}

void Model::make_backend(const BackendOptions& opt, const LoadProgress& progress) {
  if (opt.device == "cpu") {
    backend_ = make_cpu_backend(cfg_, weights_, opt);
  } else if (opt.device == "cuda") {
    backend_ = make_cuda_backend(cfg_, weights_, opt, progress);
  } else if (opt.device == "auto" && opt.kv_dtype == "q8") {
    // q8 K/V exist on the CPU backend only: auto does not take a GPU for them, and says so.
    std::fprintf(stderr, "hogwild: device auto: K/V type q8 is CPU-only (bf16 runs on cuda); running on the CPU\n");
    backend_ = make_cpu_backend(cfg_, weights_, opt);
    device_note_ = "cpu (auto: K/V type q8 is CPU-only; use bf16 for cuda)";
  } else if (opt.device == "auto") {
    try {
      backend_ = make_cuda_backend(cfg_, weights_, opt, progress);
    } catch (const EngineError& e) {
      // One line, and the reason stays visible in the model's device description.
      std::fprintf(stderr, "hogwild: device auto: %s; running on the CPU\n", e.what());
      backend_ = make_cpu_backend(cfg_, weights_, opt);
      // The summary's device field is short (protocol limit 200 characters); stderr has it all.
      std::string why = e.what();
      if (why.size() > 150) why = why.substr(0, 147) + "...";
      device_note_ = "cpu (auto: " + why + ")";
    }
  } else {
    fail("device", "'" + opt.device + "' is not a device (use cpu, cuda or auto)");
  }
  max_context_ = cfg_.max_context;
}

std::string Model::device() const {
  return device_note_.empty() ? backend_->describe() : device_note_;
}

void Model::set_max_context(int n) {
  if (n <= 0 || n > cfg_.max_context)
    fail("max context", std::to_string(n) + " is outside 1.." + std::to_string(cfg_.max_context));
  max_context_ = n;
}

void Model::forward(const Batch& batch, ForwardOutput& out) {
  // Validate everything before touching the cache, so a bad batch changes nothing.
  std::set<int> written;
  std::vector<RowPlan> plans(batch.rows.size());
  for (size_t r = 0; r < batch.rows.size(); r++) {
    const BatchRow& row = batch.rows[r];
    const std::string where = "forward row " + std::to_string(r);
    if (row.tokens.empty()) fail(where, "no tokens");
    if (!cache_.valid(row.block)) fail(where, "no block " + std::to_string(row.block));
    if (!written.insert(row.block).second)
      fail(where, "block " + std::to_string(row.block) + " is written by two rows");
    for (int32_t id : row.tokens)
      if (id < 0 || id >= cfg_.vocab)
        fail(where, "token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                        std::to_string(cfg_.vocab - 1) + ")");
    int own = -1;
    std::set<int> in_view;
    for (const ViewSegment& s : row.view) {
      if (!cache_.valid(s.block)) fail(where, "view names no block " + std::to_string(s.block));
      if (!in_view.insert(s.block).second) fail(where, "the view names block " + std::to_string(s.block) + " twice");
      if (s.offset < 0) fail(where, "negative view offset " + std::to_string(s.offset));
      if (s.block == row.block) own = s.offset;
    }
    if (own < 0) fail(where, "the view does not contain the written block " + std::to_string(row.block));
    plans[r].first_position = own + cache_.length(row.block);
    const int last = plans[r].first_position + int(row.tokens.size()) - 1;
    if (last >= max_context_)
      fail(where, "context too long: position " + std::to_string(last) + " is past the maximum context of " +
                      std::to_string(max_context_) + " tokens");
  }

  // Room for the new tokens (copy-on-write of shared pages first).
  std::vector<TokenMove> copies;
  for (const BatchRow& row : batch.rows) cache_.reserve(row.block, int(row.tokens.size()), copies);
  backend_->ensure_pages(cache_.pages_allocated());
  backend_->move_tokens(copies, 0);

  std::map<int, int> added;
  for (const BatchRow& row : batch.rows) added[row.block] = int(row.tokens.size());
  for (size_t r = 0; r < batch.rows.size(); r++) {
    const BatchRow& row = batch.rows[r];
    const int len = cache_.length(row.block);
    for (int i = 0; i < int(row.tokens.size()); i++) plans[r].write_slots.push_back(cache_.slot(row.block, len + i));
    for (const ViewSegment& s : row.view) {
      auto it = added.find(s.block);
      plans[r].segment_lengths.push_back(cache_.length(s.block) + (it == added.end() ? 0 : it->second));
    }
  }

  try {
    par::Use use(pool_.get());  // the CPU kernels below run on this model's threads
    backend_->forward(batch, plans, cache_, out);
  } catch (...) {
    for (const BatchRow& row : batch.rows) cache_.truncate(row.block, cache_.length(row.block));
    throw;
  }
  for (const BatchRow& row : batch.rows) cache_.commit(row.block, int(row.tokens.size()));
}

void Model::forward_chunked(const BatchRow& row, int chunk, ForwardOutput& out,
                            const std::function<void(int, int)>& after_chunk, const std::atomic<bool>* cancel,
                            double report_s) {
  if (chunk < 1) fail("forward", "the prefill chunk must be at least 1 token, got " + std::to_string(chunk));
  const int total = int(row.tokens.size());
  if (total == 0) fail("forward", "no tokens");
  PrefillPacer pacer(chunk, report_s);
  for (int done = 0; done < total;) {
    const int n = pacer.next(total - done);
    const auto t0 = std::chrono::steady_clock::now();
    Batch b;
    b.cancel = cancel;
    BatchRow part;
    part.tokens.assign(row.tokens.begin() + done, row.tokens.begin() + done + n);
    part.block = row.block;
    part.view = row.view;
    const bool last = done + n == total;
    part.logits = last && row.logits;
    part.all_logits = last && row.all_logits;
    b.rows.push_back(std::move(part));
    forward(b, out);
    pacer.done(n, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    done += n;
    if (after_chunk) after_chunk(done, total);
  }
}

void Model::append_block(int dst, int src) {
  const int n = cache_.length(src), base = cache_.length(dst);
  if (n == 0) return;
  std::vector<TokenMove> copies;
  cache_.reserve(dst, n, copies);
  backend_->ensure_pages(cache_.pages_allocated());
  backend_->move_tokens(copies, 0);
  std::vector<TokenMove> moves;
  for (int i = 0; i < n; i++) moves.push_back({cache_.slot(src, i), cache_.slot(dst, base + i)});
  backend_->move_tokens(moves, base);
  cache_.commit(dst, n);
}

}  // namespace hw
