// Conversions between JavaScript values and engine types. Every reader checks the value's
// type and throws a JS TypeError naming the field, so bad input never reaches the engine.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "hogwild/engine.h"
#include "model.h"

namespace hw::js {

std::vector<int32_t> ids(const Napi::Value& v, const std::string& field);
double number(const Napi::Object& o, const char* key, double fallback);
double required_number(const Napi::Object& o, const char* key);
bool boolean(const Napi::Object& o, const char* key, bool fallback);
std::string string(const Napi::Object& o, const char* key, const std::string& fallback);

Napi::Int32Array int32_array(Napi::Env env, const std::vector<int32_t>& v);
Napi::Float32Array float32_array(Napi::Env env, const float* data, size_t n);

Napi::Object model_config(Napi::Env env, const ModelConfig& c);
SamplingParams sampling(const Napi::Object& o);
HogwildConfig run_config(const Napi::Object& o, int vocab);
Napi::Object event(Napi::Env env, const Event& e);
Napi::Object inspect_result(Napi::Env env, const InspectResult& r);

}  // namespace hw::js
