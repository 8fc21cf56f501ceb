#include "run_wrap.h"

#include "convert.h"
#include "model_wrap.h"

namespace hw::js {

Napi::FunctionReference RunWrap::constructor;

Napi::Function RunWrap::define(Napi::Env env) {
  Napi::Function f = DefineClass(
      env, "NativeRun",
      {InstanceMethod<&RunWrap::pause>("pause"), InstanceMethod<&RunWrap::resume>("resume"),
       InstanceMethod<&RunWrap::step>("step"), InstanceMethod<&RunWrap::stop>("stop"),
       InstanceMethod<&RunWrap::inject>("inject"), InstanceMethod<&RunWrap::fork>("fork"),
       InstanceMethod<&RunWrap::set_temperature>("setTemperature"), InstanceMethod<&RunWrap::inspect>("inspect"),
       InstanceMethod<&RunWrap::request_key_attention>("requestKeyAttention"), InstanceMethod<&RunWrap::done>("done"),
       InstanceMethod<&RunWrap::release_cache>("release")});
  constructor = Napi::Persistent(f);
  constructor.SuppressDestruct();
  return f;
}

RunWrap::RunWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RunWrap>(info) {}

RunWrap::~RunWrap() {
  if (run_) run_->stop();
  if (thread_.joinable()) thread_.join();
}

Napi::Value RunWrap::start(Napi::Env env, ModelWrap* model, Napi::Object model_object, const Napi::Object& cfg,
                           Napi::Function on_events) {
  HogwildConfig config = run_config(cfg, model->model().config().vocab);
  Napi::Object self = constructor.New({});
  RunWrap* run = Unwrap(self);
  // The sink reaches JavaScript through a thread-safe function made once the run is valid.
  auto tsfn = std::make_shared<Napi::ThreadSafeFunction>();
  auto sink = [tsfn](std::vector<Event>&& events) {
    auto* data = new std::vector<Event>(std::move(events));
    tsfn->BlockingCall(data, [](Napi::Env env, Napi::Function cb, std::vector<Event>* d) {
      Napi::Array batch = Napi::Array::New(env, d->size());
      for (size_t i = 0; i < d->size(); i++) batch.Set(uint32_t(i), event(env, (*d)[i]));
      delete d;
      cb.Call({batch});
    });
  };
  try {
    run->run_ = std::make_unique<HogwildRun>(model->model(), std::move(config), sink);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());  // nothing acquired yet: the model stays free
  }
  model->acquire(env, "startRun");
  run->model_ref_ = Napi::Persistent(model_object);
  run->model_ = model;
  run->done_ = std::make_shared<Napi::Promise::Deferred>(env);
  run->done_promise_ = Napi::Persistent(run->done_->Promise().As<Napi::Object>());
  run->Ref();  // alive until its loop has ended
  *tsfn = Napi::ThreadSafeFunction::New(env, on_events, "hogwild-events", 0, 1, [run, model](Napi::Env) {
    model->release();
    run->done_->Resolve(run->Env().Undefined());
    run->Unref();
  });
  HogwildRun* loop = run->run_.get();
  run->thread_ = std::thread([loop, tsfn]() {
    loop->run();
    tsfn->Release();
  });
  return self;
}

static int optional_worker(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || info[0].IsUndefined()) return -1;
  if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "worker must be a number");
  return info[0].As<Napi::Number>().Int32Value();
}

// Runs a control and turns an engine error into a JS exception; the run is unharmed.
template <typename F>
static Napi::Value guarded(Napi::Env env, F&& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value RunWrap::pause(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    run_->pause(optional_worker(info));
    return info.Env().Undefined();
  });
}
Napi::Value RunWrap::resume(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    run_->resume(optional_worker(info));
    return info.Env().Undefined();
  });
}
Napi::Value RunWrap::step(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    run_->single_step();
    return info.Env().Undefined();
  });
}
Napi::Value RunWrap::stop(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    run_->stop(optional_worker(info));
    return info.Env().Undefined();
  });
}
Napi::Value RunWrap::inject(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    if (info.Length() < 2 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "inject(target, ids)");
    run_->inject(info[0].As<Napi::Number>().Int32Value(), ids(info[1], "note ids"));
    return info.Env().Undefined();
  });
}
Napi::Value RunWrap::fork(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    if (info.Length() < 1 || !info[0].IsNumber())
      throw Napi::TypeError::New(info.Env(), "fork(worker, headerPrefixIds?)");
    Ids prefix = info.Length() > 1 && !info[1].IsUndefined() ? ids(info[1], "headerPrefixIds") : Ids{};
    return Napi::Number::New(info.Env(), run_->fork(info[0].As<Napi::Number>().Int32Value(), std::move(prefix)));
  });
}
Napi::Value RunWrap::set_temperature(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
      throw Napi::TypeError::New(info.Env(), "setTemperature(worker, temperature)");
    run_->set_temperature(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().FloatValue());
    return info.Env().Undefined();
  });
}
Napi::Value RunWrap::inspect(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
      throw Napi::TypeError::New(info.Env(), "inspect(block, index, attention)");
    const bool attention = info.Length() > 2 && info[2].ToBoolean();
    return inspect_result(info.Env(), run_->inspect(info[0].As<Napi::Number>().Int32Value(),
                                                    info[1].As<Napi::Number>().Int32Value(), attention));
  });
}
Napi::Value RunWrap::request_key_attention(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&] {
    run_->request_key_attention();
    return info.Env().Undefined();
  });
}
Napi::Value RunWrap::done(const Napi::CallbackInfo& info) {
  return done_promise_.Value();
}
// release(): the ended run's blocks back to the model's cache. Nothing to do once the model is
// closed (its cache went with it); refused while the model runs something else (the cache is
// the engine thread's then).
Napi::Value RunWrap::release_cache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!model_ || model_->closed()) return env.Undefined();
  if (!run_->done()) throw Napi::Error::New(env, "release: the run is still going (stop it first)");
  model_->acquire(env, "release");
  try {
    run_->release_cache();
  } catch (const std::exception& e) {
    model_->release();
    throw Napi::Error::New(env, e.what());
  }
  model_->release();
  return env.Undefined();
}

}  // namespace hw::js
