#include "model_wrap.h"

#include <array>
#include <chrono>
#include <thread>

#include "convert.h"
#include "error.h"
#include "run_wrap.h"
#include "sampler.h"

namespace hw::js {

Napi::FunctionReference ModelWrap::constructor;

Napi::Function ModelWrap::define(Napi::Env env) {
  Napi::Function f = DefineClass(env, "NativeModel",
                                 {InstanceAccessor<&ModelWrap::config>("config"),
                                  InstanceAccessor<&ModelWrap::device>("device"),
                                  InstanceAccessor<&ModelWrap::kv_dtype>("kvDtype"),
                                  InstanceMethod<&ModelWrap::create_sequence>("createSequence"),
                                  InstanceMethod<&ModelWrap::release_sequence>("releaseSequence"),
                                  InstanceMethod<&ModelWrap::sequence_length>("sequenceLength"),
                                  InstanceMethod<&ModelWrap::forward>("forward"),
                                  InstanceMethod<&ModelWrap::generate>("generate"),
                                  InstanceMethod<&ModelWrap::start_run>("startRun"),
                                  InstanceMethod<&ModelWrap::kv_bytes>("kvBytes"),
                                  InstanceMethod<&ModelWrap::close>("close")});
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

Napi::Value ModelWrap::config(const Napi::CallbackInfo& info) { return model_config(info.Env(), model().config()); }

Napi::Value ModelWrap::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), model().backend().name());
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
    if (!rows.Get(i).IsObject()) throw Napi::TypeError::New(env, "forward: row " + std::to_string(i) + " is not an object");
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

struct GenerateJob {
  std::vector<int32_t> prompt, stop;
  int max_tokens = 0;
  SamplingParams sampling;
  uint64_t seed = 0;
  int prefill_chunk = 128;
  Napi::FunctionReference on_progress;  // optional: (done, total, tokensPerSecond) during the prefill
  // Results, read by the finaliser on the JavaScript thread.
  std::vector<int32_t> ids;
  double prompt_ms = 0, decode_ms = 0;
  std::string error;
};

}  // namespace

// generate(req, onTokens, onProgress?): plain generation on its own thread, ids delivered in
// batches; the prompt is prefilled in chunks of req.prefillChunk tokens (default 128), with
// onProgress(done, total, tokensPerSecond) after each.
Napi::Value ModelWrap::generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "generate(request, onTokens)");
  Napi::Object req = info[0].As<Napi::Object>();
  auto job = std::make_shared<GenerateJob>();
  job->prompt = ids(req.Get("promptIds"), "promptIds");
  job->stop = req.Has("stopIds") ? ids(req.Get("stopIds"), "stopIds") : std::vector<int32_t>{};
  job->max_tokens = int(required_number(req, "maxTokens"));
  job->sampling = req.Get("sampling").IsObject() ? sampling(req.Get("sampling").As<Napi::Object>()) : SamplingParams{};
  job->seed = uint64_t(number(req, "seed", 0));
  job->prefill_chunk = int(number(req, "prefillChunk", 128));
  if (job->prefill_chunk < 1) throw Napi::RangeError::New(env, "generate: prefillChunk must be at least 1");
  if (info.Length() > 2 && info[2].IsFunction()) job->on_progress = Napi::Persistent(info[2].As<Napi::Function>());
  if (job->prompt.empty()) throw Napi::RangeError::New(env, "generate: the prompt is empty");
  if (job->max_tokens < 1) throw Napi::RangeError::New(env, "generate: maxTokens must be at least 1");
  acquire(env, "generate");

  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  Ref();
  Napi::ThreadSafeFunction tsfn = Napi::ThreadSafeFunction::New(
      env, info[1].As<Napi::Function>(), "hogwild-generate", 0, 1, [this, job, deferred](Napi::Env env) {
        release();
        Unref();
        job->on_progress.Reset();  // on the JavaScript thread, before the job may die elsewhere
        if (!job->error.empty()) {
          deferred->Reject(Napi::Error::New(env, job->error).Value());
          return;
        }
        Napi::Object r = Napi::Object::New(env);
        Napi::Array ids = Napi::Array::New(env, job->ids.size());
        for (size_t i = 0; i < job->ids.size(); i++) ids.Set(uint32_t(i), job->ids[i]);
        r.Set("ids", ids);
        r.Set("promptMs", job->prompt_ms);
        r.Set("decodeMs", job->decode_ms);
        deferred->Resolve(r);
      });

  Model* model = model_.get();
  std::thread([model, job, tsfn]() mutable {
    using clock = std::chrono::steady_clock;
    auto send = [&](std::vector<int32_t> batch) {
      auto* data = new std::vector<int32_t>(std::move(batch));
      tsfn.BlockingCall(data, [](Napi::Env env, Napi::Function cb, std::vector<int32_t>* d) {
        cb.Call({int32_array(env, *d)});
        delete d;
      });
    };
    auto progress = [&](int done, int total, double tps) {
      if (job->on_progress.IsEmpty()) return;
      auto* data = new std::array<double, 3>{double(done), double(total), tps};
      tsfn.BlockingCall(data, [job](Napi::Env env, Napi::Function, std::array<double, 3>* d) {
        job->on_progress.Call({Napi::Number::New(env, (*d)[0]), Napi::Number::New(env, (*d)[1]), Napi::Number::New(env, (*d)[2])});
        delete d;
      });
    };
    int block = -1;
    try {
      block = model->cache().create_block();
      Rng rng(job->seed);
      std::vector<int32_t> input = job->prompt, pending;
      auto last_send = clock::now();
      const auto t0 = clock::now();
      auto t_first = t0;
      for (int i = 0; i < job->max_tokens; i++) {
        ForwardOutput out;
        if (i == 0) {
          progress(0, int(input.size()), 0.0);
          model->forward_chunked({input, block, {{block, 0}}, true}, job->prefill_chunk, out, [&](int done, int total) {
            const double s = std::chrono::duration<double>(clock::now() - t0).count();
            progress(done, total, s > 0 ? done / s : 0.0);
          });
        } else {
          Batch batch;
          batch.rows.push_back({input, block, {{block, 0}}, true});
          model->forward(batch, out);
        }
        const int32_t next = sample_token(out.row_logits(0), out.vocab, job->sampling, rng);
        if (i == 0) t_first = clock::now();
        job->ids.push_back(next);
        pending.push_back(next);
        const bool stop = std::find(job->stop.begin(), job->stop.end(), next) != job->stop.end();
        if (stop || clock::now() - last_send > std::chrono::milliseconds(30)) {
          send(std::move(pending));
          pending.clear();
          last_send = clock::now();
        }
        if (stop) break;
        input = {next};
      }
      if (!pending.empty()) send(std::move(pending));
      job->prompt_ms = std::chrono::duration<double, std::milli>(t_first - t0).count();
      job->decode_ms = std::chrono::duration<double, std::milli>(clock::now() - t_first).count();
    } catch (const std::exception& e) {
      job->error = e.what();
    }
    if (block >= 0) model->cache().release_block(block);
    tsfn.Release();
  }).detach();
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
