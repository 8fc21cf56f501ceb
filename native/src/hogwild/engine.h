// A Hogwild run: several workers generating at once over one shared, paged KV cache.
// The run loop lives on its own thread; controls are queued and applied between steps;
// events leave in batches through the sink.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <string>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "../model.h"
#include "events.h"
#include "run_config.h"
#include "step_rules.h"

namespace hw {

struct InspectResult {
  int block = -1, index = 0;
  int32_t token = 0;
  int author = -1;  // worker that wrote it, -1 for shared text
  int step = 0;     // the author's step number
  struct Seen {
    int worker;
    int position;  // view position of the token for this worker, -1 if not in its view
    int rotation;  // rotation this worker's next query applies to the block, 0 if not in view
  };
  std::vector<Seen> seen;
  // Per worker: the attention its last token paid this token at attention_step (-1: not in that
  // view). Empty when none has been recorded yet.
  std::vector<float> attention;
  int attention_step = -1;  // the step the attention was recorded at (-1: none yet)
  // The recorded attention is older than the last step, or none is recorded, and the run goes on
  // (where it is recorded on request, request_key_attention() has the next step record it).
  bool attention_pending = false;
};

// Sees every change to the cache, in order: the forwards and the block operations. Tests
// replay them through an independent reference.
struct RunObserver {
  virtual ~RunObserver() = default;
  virtual void on_forward(const Batch& batch, const ForwardOutput& out) {}
  virtual void on_append(int dst, int src) {}  // src's tokens appended to dst (history move)
  virtual void on_fork(int dst, int src) {}    // dst starts as a copy of src
  virtual void on_release(int block) {}
};

class HogwildRun {
 public:
  using EventSink = std::function<void(std::vector<Event>&&)>;

  // Validates the config (throws EngineError); does not start anything.
  HogwildRun(Model& model, HogwildConfig cfg, EventSink sink);
  ~HogwildRun();  // stops the run and joins its thread

  void start();  // runs the loop on the engine thread
  void run();    // runs the loop on the calling thread (tests, CLI)
  void wait();   // blocks until the loop has ended
  bool done() const { return done_; }

  // Controls: thread-safe, validated at once (EngineError on bad input), applied between steps.
  void pause(int worker = -1);  // -1 = the whole run
  void resume(int worker = -1);
  void single_step();                // one step while the run is paused
  void stop(int worker = -1);        // -1 = end the run; else that worker finishes
  void inject(int target, Ids ids);  // target -1 = every worker
  // The new worker's id. Its step headers use `header_prefix` (its own name), or the origin's.
  int fork(int worker, Ids header_prefix = {});
  void set_temperature(int worker, float temperature);

  InspectResult inspect(int block, int index, bool attention);
  // The next step records each worker's attention on every key (where it is recorded on request:
  // HogwildConfig::key_attention). Thread-safe; nothing happens without attention shares.
  void request_key_attention() { key_attention_wanted_ = true; }
  // After the run has ended: its blocks go back to the model's cache, so that their pages
  // serve the next run (a run never frees them by itself: it stays inspectable, and inspect
  // keeps working from the run's own records). Throws while the run is going.
  void release_cache();
  void set_observer(RunObserver* observer) { observer_ = observer; }

  // Where the time of the run loop went (benchmarks): the model's forwards and the rest.
  struct Timings {
    double loop_ms = 0;       // the whole loop, from the first step to the last
    double forward_ms = 0;    // inside Model::forward
    double attention_ms = 0;  // of which attention
    double sampling_ms = 0;   // drawing the next tokens (outside the forward, not Hogwild bookkeeping)
    int steps = 0;
    // The shared prefill (kept when the loop's figures start): its time, of which attention,
    // and the sizes of its first and largest chunks.
    double prefill_ms = 0, prefill_attention_ms = 0;
    int prefill_first_chunk = 0, prefill_largest_chunk = 0;
  };
  Timings timings() const { return timings_; }

  // Read by tests (only while the loop is not running a step).
  const std::vector<std::vector<ViewSegment>>& last_views() const { return views_; }
  int workers() const { return int(workers_.size()); }
  int history_block() const { return history_; }
  const std::vector<int32_t>& block_tokens(int block) const { return meta_.at(block).tokens; }
  int worker_block(int w) const { return workers_.at(w).block; }

 private:
  struct Worker {
    int block = -1;                // its current (unfinished) step block
    int step = 1;                  // current step number
    Ids pending;                   // input to feed at the next forward
    bool move_after_feed = false;  // the pending input closes the step: move it to history after
    bool finished = false;
    bool paused = false;
    int forked_from = -1;
    float temperature = 0.0f;
    Rng rng;
    StepDetector detector;
    std::vector<int32_t> generated;  // sampled ids (raw results, tests)
  };
  struct BlockMeta {
    BlockKind kind = BlockKind::Prompt;
    int owner = -1;
    std::vector<int32_t> tokens;
    std::vector<int> authors, steps;  // per token
  };
  struct Note {
    int block;
    int target;  // -1 = all
    Ids text;    // written into the block with the next forward
    bool written = false;
  };
  struct Control {
    enum class Type { Pause, Resume, Step, StopWorker, Inject, Fork, Temperature } type;
    int worker = -1;
    float value = 0.0f;
    Ids ids;
  };

  void loop();
  void forward(const Batch& batch, ForwardOutput& out);
  void prefill_shared();
  void check_fits() const;     // the context and the KV budget, before any compute
  void hold_between_chunks();  // prefill: run-level pause / stop between chunks
  bool kv_budget_reached(const std::map<int, int>& added);
  int context_limit() const;
  void apply_controls();
  enum class StepResult { Ran, Idle, Done };
  StepResult step_once();
  void finish();
  void build_views();
  std::vector<ViewSegment> view_of(int w) const;
  int new_block(BlockKind kind, int owner);
  void record(int block, const Ids& ids, int author, int step);
  void move_to_history(int w);
  Ids header(int w, int step) const;
  void emit(Event e);
  void flush(bool force);
  void check_worker(int w, const char* what) const;
  template <typename Check>
  void enqueue(const char* what, Control c, Check&& check);
  WorkerEvent worker_event(int w) const;
  void finish_worker(int w);

  Model& model_;
  HogwildConfig cfg_;
  EventSink sink_;
  RunObserver* observer_ = nullptr;
  Timings timings_;

  int prompt_ = -1, history_ = -1, header_others_ = -1, header_own_ = -1;
  std::vector<Worker> workers_;
  std::vector<Note> notes_;
  std::map<int, BlockMeta> meta_;
  std::vector<std::vector<ViewSegment>> views_;  // per worker, this step
  std::vector<std::vector<int>> view_lengths_;   // per worker, segment lengths after this step
  // Each worker's last token's attention on every key it saw, from the last step that recorded it
  // (inspect() maps a cache position to its key through the view of that step).
  struct KeyAttentionRecord {
    int step = -1;                  // -1: never recorded
    std::vector<ViewSegment> view;  // the worker's view at that step (a moved block: the history)
    std::vector<int> base;          // per segment: the block index of its first key (a moved
                                    // block's tokens follow the history's earlier ones)
    std::vector<int> visible;       // per segment: keys its last token saw
    std::vector<float> values;      // segment by segment, `visible` keys each
  };
  std::vector<KeyAttentionRecord> key_attention_;
  std::atomic<bool> key_attention_wanted_{false};  // request_key_attention(): the next step records it
  bool key_attention_this_step();                  // whether this step asks the backend (takes the request)
  // This step's per-key attention into the records (workers that fed no row keep their older one).
  void record_key_attention(const std::vector<int>& row_worker, ForwardOutput& out);
  void attach_key_attention(InspectResult& r);
  int step_ = 0;             // forwards run so far
  int generated_ = 0;        // tokens sampled by all workers
  int next_self_check_ = 0;  // generated-token count at which the next self-check is due
  bool self_check_due_ = false;

  // Control queue and run state shared with other threads.
  mutable std::mutex control_mu_;
  std::condition_variable control_cv_;
  std::deque<Control> controls_;
  bool paused_ = false, stopping_ = false;
  std::atomic<bool> cancel_{false};    // set by stop(): a prefill chunk ends between layers
  double kv_budget_ = 0;               // bytes; fixed when the run starts
  std::string end_message_;            // why the run ended early (KV budget), for the final run-state
  int steps_allowed_ = 0;              // single steps granted while paused
  int worker_count_ = 0;               // workers including queued forks (validation)
  std::vector<bool> worker_finished_;  // snapshot for validation

  bool released_ = false;  // release_cache() has run
  std::mutex step_mu_;     // held while a step runs (inspect waits for it)
  std::vector<Event> outbox_;
  std::chrono::steady_clock::time_point last_flush_;
  std::chrono::steady_clock::time_point started_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::mutex done_mu_;
  std::condition_variable done_cv_;
};

Layout parse_layout(const std::string& name);
KeyAttention parse_key_attention(const std::string& name);

}  // namespace hw
