#include "model_wrap.h"

#include <array>

#include "convert.h"
#include "error.h"
#include "generate.h"
#include "run_wrap.h"
#include "sampler.h"

namespace hw::js {

Napi::FunctionReference ModelWrap::constructor;

Napi::Function ModelWrap::define(Napi::Env env) {
  Napi::Function f = DefineClass(
      env, "NativeModel",
      {InstanceAccessor<&ModelWrap::config>("config"), InstanceAccessor<&ModelWrap::device>("device"),
       InstanceAccessor<&ModelWrap::kv_dtype>("kvDtype"), InstanceMethod<&ModelWrap::create_sequence>("createSequence"),
       InstanceMethod<&ModelWrap::release_sequence>("releaseSequence"),
       InstanceMethod<&ModelWrap::sequence_length>("sequenceLength"), InstanceMethod<&ModelWrap::forward>("forward"),
       InstanceMethod<&ModelWrap::generate>("generate"), InstanceMethod<&ModelWrap::start_run>("startRun"),
       InstanceMethod<&ModelWrap::kv_bytes>("kvBytes"), InstanceMethod<&ModelWrap::close>("close")});
  constructor = Napi::Persistent(f);
  constructor.SuppressDestruct();
  return f;
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw Napi::TypeError::New(info.Env(), "NativeModel is made by loadModel()");
  model_.reset(info[0].As<Napi::External<Model>>().Data());
}

Model& ModelWrap::model() {
  if (!model_) throw EngineError("model: it has been closed");
  return *model_;
}

void ModelWrap::acquire(Napi::Env env, const char* what) {
  if (!model_) throw Napi::Error::New(env, std::string(what) + ": the model has been closed");
  bool expected = false;
  if (!busy_.compare_exchange_strong(expected, true))
    throw Napi::Error::New(env, std::string(what) + ": the model is busy with a generation or a run");
}

Napi::Value ModelWrap::config(const Napi::CallbackInfo& info) {
  return model_config(info.Env(), model().config());
}

Napi::Value ModelWrap::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), model().device());
}

Napi::Value ModelWrap::kv_dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), model().backend().kv_dtype());
}

Napi::Value ModelWrap::create_sequence(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), model().cache().create_block());
}

static int sequence_arg(const Napi::CallbackInfo& info, Model& m) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "expected a sequence id");
  const int seq = info[0].As<Napi::Number>().Int32Value();
  if (!m.cache().valid(seq)) throw Napi::RangeError::New(info.Env(), "no sequence " + std::to_string(seq));
  return seq;
}

Napi::Value ModelWrap::release_sequence(const Napi::CallbackInfo& info) {
  model().cache().release_block(sequence_arg(info, model()));
  return info.Env().Undefined();
}

Napi::Value ModelWrap::sequence_length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), model().cache().length(sequence_arg(info, model())));
}

// forward(rows): each row appends tokens to its own sequence, viewed alone.
Napi::Value ModelWrap::forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "forward(rows): rows must be an array");
  Batch batch;
  Napi::Array rows = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < rows.Length(); i++) {
    if (!rows.Get(i).IsObject())
      throw Napi::TypeError::New(env, "forward: row " + std::to_string(i) + " is not an object");
    Napi::Object r = rows.Get(i).As<Napi::Object>();
    BatchRow row;
    row.block = int(required_number(r, "seq"));
    row.tokens = ids(r.Get("tokens"), "rows[" + std::to_string(i) + "].tokens");
    row.all_logits = boolean(r, "allLogits", false);
    row.view = {{row.block, 0}};
    batch.rows.push_back(std::move(row));
  }
  acquire(env, "forward");
  ForwardOutput out;
  try {
    model_->forward(batch, out);
  } catch (const std::exception& e) {
    release();
    throw Napi::Error::New(env, e.what());
  }
  release();
  Napi::Array result = Napi::Array::New(env, batch.rows.size());
  for (size_t r = 0; r < batch.rows.size(); r++) {
    const size_t n = size_t(out.logit_count[r]) * size_t(out.vocab);
    result.Set(uint32_t(r), float32_array(env, n ? out.row_logits(int(r)) : nullptr, n));
  }
  return result;
}

namespace {

// What the JavaScript side keeps of a generation until its promise settles.
struct GenerateJob {
  Napi::FunctionReference on_progress;  // optional: (done, total, tokensPerSecond) during the prefill
  GenerateResult result;                // written on the engine thread before the last call
};

}  // namespace

// generate(req, onTokens, onProgress?): plain generation (native/src/generate.cpp) on an engine
// thread, ids delivered in batches; the prompt is prefilled in chunks of req.prefillChunk tokens
// (default 128), with onProgress(done, total, tokensPerSecond) after each.
Napi::Value ModelWrap::generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "generate(request, onTokens)");
  Napi::Object req = info[0].As<Napi::Object>();
  GenerateRequest request;
  request.prompt = ids(req.Get("promptIds"), "promptIds");
  request.stop = req.Has("stopIds") ? ids(req.Get("stopIds"), "stopIds") : std::vector<int32_t>{};
  request.max_tokens = int(required_number(req, "maxTokens"));
  request.sampling =
      req.Get("sampling").IsObject() ? sampling(req.Get("sampling").As<Napi::Object>()) : SamplingParams{};
  request.seed = uint64_t(number(req, "seed", 0));
  request.prefill_chunk = int(number(req, "prefillChunk", 128));
  request.prefill_report_s = number(req, "prefillReportSeconds", 1.0);
  if (request.prefill_chunk < 1) throw Napi::RangeError::New(env, "generate: prefillChunk must be at least 1");
  if (request.prompt.empty()) throw Napi::RangeError::New(env, "generate: the prompt is empty");
  if (request.max_tokens < 1) throw Napi::RangeError::New(env, "generate: maxTokens must be at least 1");
  auto job = std::make_shared<GenerateJob>();
  if (info.Length() > 2 && info[2].IsFunction()) job->on_progress = Napi::Persistent(info[2].As<Napi::Function>());
  acquire(env, "generate");

  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  Ref();
  Napi::ThreadSafeFunction tsfn = Napi::ThreadSafeFunction::New(
      env, info[1].As<Napi::Function>(), "hogwild-generate", 0, 1, [this, job, deferred](Napi::Env env) {
        release();
        Unref();
        job->on_progress.Reset();  // on the JavaScript thread, before the job may die elsewhere
        const GenerateResult& res = job->result;
        if (!res.error.empty()) {
          deferred->Reject(Napi::Error::New(env, res.error).Value());
          return;
        }
        Napi::Object r = Napi::Object::New(env);
        Napi::Array ids = Napi::Array::New(env, res.ids.size());
        for (size_t i = 0; i < res.ids.size(); i++) ids.Set(uint32_t(i), res.ids[i]);
        r.Set("ids", ids);
        r.Set("promptMs", res.prompt_ms);
        r.Set("decodeMs", res.decode_ms);
        deferred->Resolve(r);
      });

  GenerateSink sink;
  sink.tokens = [tsfn](std::vector<int32_t> batch) mutable {
    auto* data = new std::vector<int32_t>(std::move(batch));
    tsfn.BlockingCall(data, [](Napi::Env env, Napi::Function cb, std::vector<int32_t>* d) {
      cb.Call({int32_array(env, *d)});
      delete d;
    });
  };
  if (!job->on_progress.IsEmpty()) {
    sink.progress = [tsfn, job](int done, int total, double tps) mutable {
      auto* data = new std::array<double, 3>{double(done), double(total), tps};
      tsfn.BlockingCall(data, [job](Napi::Env env, Napi::Function, std::array<double, 3>* d) {
        job->on_progress.Call(
            {Napi::Number::New(env, (*d)[0]), Napi::Number::New(env, (*d)[1]), Napi::Number::New(env, (*d)[2])});
        delete d;
      });
    };
  }
  sink.done = [tsfn, job](GenerateResult res) mutable {
    job->result = std::move(res);
    tsfn.Release();  // the finaliser settles the promise
  };
  try {
    start_generation(model(), std::move(request), std::move(sink));
  } catch (const std::exception& e) {
    tsfn.Release();
    throw Napi::Error::New(env, e.what());
  }
  return deferred->Promise();
}

Napi::Value ModelWrap::start_run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "startRun(config, onEvents)");
  return RunWrap::start(env, this, Value(), info[0].As<Napi::Object>(), info[1].As<Napi::Function>());
}

Napi::Value ModelWrap::kv_bytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(model().backend().kv_bytes()));
}

Napi::Value ModelWrap::close(const Napi::CallbackInfo& info) {
  acquire(info.Env(), "close");
  model_.reset();
  busy_ = false;
  return info.Env().Undefined();
}

}  // namespace hw::js
