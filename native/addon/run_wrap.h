// The JavaScript face of a Hogwild run (NativeRun in extension/engine/native.ts): the run loop
// on its own thread, events delivered in batches through a thread-safe function.
#pragma once
#include <napi.h>

#include <memory>
#include <thread>

#include "hogwild/engine.h"

namespace hw::js {

class ModelWrap;

class RunWrap : public Napi::ObjectWrap<RunWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::FunctionReference constructor;
  // Builds and starts a run; the model stays busy until it ends.
  static Napi::Value start(Napi::Env env, ModelWrap* model, Napi::Object model_object, const Napi::Object& cfg,
                           Napi::Function on_events);
  RunWrap(const Napi::CallbackInfo& info);
  ~RunWrap();

 private:
  Napi::Value control(const Napi::CallbackInfo& info, const char* what);
  Napi::Value pause(const Napi::CallbackInfo& info);
  Napi::Value resume(const Napi::CallbackInfo& info);
  Napi::Value step(const Napi::CallbackInfo& info);
  Napi::Value stop(const Napi::CallbackInfo& info);
  Napi::Value inject(const Napi::CallbackInfo& info);
  Napi::Value fork(const Napi::CallbackInfo& info);
  Napi::Value set_temperature(const Napi::CallbackInfo& info);
  Napi::Value inspect(const Napi::CallbackInfo& info);
  Napi::Value request_key_attention(const Napi::CallbackInfo& info);
  Napi::Value done(const Napi::CallbackInfo& info);
  Napi::Value release_cache(const Napi::CallbackInfo& info);

  std::unique_ptr<HogwildRun> run_;
  std::thread thread_;
  std::shared_ptr<Napi::Promise::Deferred> done_;
  Napi::ObjectReference done_promise_;  // persistent: done() may be called from any later scope
  // The model's JavaScript object stays alive with the run (release() checks it is still open).
  Napi::ObjectReference model_ref_;
  ModelWrap* model_ = nullptr;
};

}  // namespace hw::js
