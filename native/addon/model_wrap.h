// The JavaScript face of a loaded model (NativeModel in extension/engine/native.ts).
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

#include "model.h"

namespace hw::js {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::FunctionReference constructor;
  ModelWrap(const Napi::CallbackInfo& info);

  Model& model();
  // One user at a time: a synchronous forward, a generation or a run.
  void acquire(Napi::Env env, const char* what);
  void release() { busy_ = false; }
  // True once close() has freed the model.
  bool closed() const { return !model_; }

 private:
  Napi::Value config(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value kv_dtype(const Napi::CallbackInfo& info);
  Napi::Value create_sequence(const Napi::CallbackInfo& info);
  Napi::Value release_sequence(const Napi::CallbackInfo& info);
  Napi::Value sequence_length(const Napi::CallbackInfo& info);
  Napi::Value forward(const Napi::CallbackInfo& info);
  Napi::Value generate(const Napi::CallbackInfo& info);
  Napi::Value start_run(const Napi::CallbackInfo& info);
  Napi::Value kv_bytes(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);

  std::unique_ptr<Model> model_;
  std::atomic<bool> busy_{false};
};

}  // namespace hw::js
