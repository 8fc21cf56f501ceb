// The N-API module: loadModel() (asynchronous, with progress) and sample() (for tests and tools).
#include <napi.h>

#include <cstdio>

#include "convert.h"
#include "model_wrap.h"
#include "run_wrap.h"
#include "sampler.h"

namespace hw::js {
namespace {

// One load progress report, copied across threads (the worker keeps only the latest).
struct LoadStep {
  char phase[16];
  double done, total;
};

// Loads a model off the JavaScript thread; the promise rejects with the loader's message.
// onProgress(phase, done, total), when given, follows the load (Model::load's LoadProgress);
// every report reaches JavaScript before the promise settles.
class LoadWorker : public Napi::AsyncProgressWorker<LoadStep> {
 public:
  LoadWorker(Napi::Env env, std::string dir, BackendOptions opt, int max_context, Napi::Value on_progress)
      : Napi::AsyncProgressWorker<LoadStep>(env),
        deferred_(Napi::Promise::Deferred::New(env)),
        dir_(std::move(dir)),
        opt_(std::move(opt)),
        max_context_(max_context) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      model_ = Model::load(dir_, opt_, [&progress](const char* phase, double done, double total) {
        LoadStep step{};
        std::snprintf(step.phase, sizeof step.phase, "%s", phase);
        step.done = done;
        step.total = total;
        progress.Send(&step, 1);
      });
      if (max_context_ > 0) model_->set_max_context(max_context_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnProgress(const LoadStep* step, size_t count) override {
    if (!step || count == 0 || on_progress_.IsEmpty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    try {
      on_progress_.Call({Napi::String::New(env, step->phase), Napi::Number::New(env, step->done),
                         Napi::Number::New(env, step->total)});
    } catch (const Napi::Error&) {
      // A throwing progress callback does not end the load.
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    on_progress_.Reset();
    Napi::Object wrap = ModelWrap::constructor.New({Napi::External<Model>::New(env, model_.release())});
    deferred_.Resolve(wrap);
  }
  void OnError(const Napi::Error& e) override {
    on_progress_.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_;
  BackendOptions opt_;
  int max_context_;
  Napi::FunctionReference on_progress_;
  std::unique_ptr<Model> model_;
};

Napi::Value load_model(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "loadModel(dir, options, onProgress): dir must be a string");
  BackendOptions opt;
  int max_context = 0;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    opt.device = string(o, "device", "auto");
    opt.threads = int(number(o, "threads", 0));
    opt.kv_dtype = string(o, "kvDtype", "auto");
    max_context = int(number(o, "maxContext", 0));
  }
  if (info.Length() > 2 && !info[2].IsFunction() && !info[2].IsUndefined())
    throw Napi::TypeError::New(env, "loadModel(dir, options, onProgress): onProgress must be a function");
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), opt, max_context,
                                info.Length() > 2 ? info[2] : env.Undefined());
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsObject() || !info[2].IsNumber() || !info[3].IsNumber())
    throw Napi::TypeError::New(env, "sample(logits: Float32Array, params, seed, count)");
  Napi::Float32Array logits = info[0].As<Napi::Float32Array>();
  SamplingParams p = sampling(info[1].As<Napi::Object>());
  Rng rng(uint64_t(info[2].As<Napi::Number>().Int64Value()));
  const int count = info[3].As<Napi::Number>().Int32Value();
  if (logits.ElementLength() == 0) throw Napi::RangeError::New(env, "sample: empty logits");
  std::vector<int32_t> out;
  for (int i = 0; i < count; i++) out.push_back(sample_token(logits.Data(), int(logits.ElementLength()), p, rng));
  return int32_array(env, out);
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  ModelWrap::define(env);
  RunWrap::define(env);
  exports.Set("loadModel", Napi::Function::New(env, load_model));
  exports.Set("sample", Napi::Function::New(env, sample));
  return exports;
}

}  // namespace hw::js

static Napi::Object init_module(Napi::Env env, Napi::Object exports) {
  return hw::js::init(env, exports);
}

NODE_API_MODULE(hogwild_native, init_module)
