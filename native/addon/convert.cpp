#include "convert.h"

#include <cstring>

namespace hw::js {

std::vector<int32_t> ids(const Napi::Value& v, const std::string& field) {
  std::vector<int32_t> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
  } else if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value x = a.Get(i);
      if (!x.IsNumber()) throw Napi::TypeError::New(v.Env(), field + "[" + std::to_string(i) + "] is not a number");
      const double d = x.As<Napi::Number>().DoubleValue();
      if (d != double(int32_t(d)))
        throw Napi::TypeError::New(v.Env(), field + "[" + std::to_string(i) + "] is not an integer id");
      out.push_back(int32_t(d));
    }
  } else {
    throw Napi::TypeError::New(v.Env(), field + " must be an Int32Array or an array of ids");
  }
  return out;
}

double number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

double required_number(const Napi::Object& o, const char* key) {
  if (!o.Has(key) || !o.Get(key).IsNumber())
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return o.Get(key).As<Napi::Number>().DoubleValue();
}

bool boolean(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Int32Array int32_array(Napi::Env env, const std::vector<int32_t>& v) {
  Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(int32_t));
  return a;
}

Napi::Float32Array float32_array(Napi::Env env, const float* data, size_t n) {
  Napi::Float32Array a = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(a.Data(), data, n * sizeof(float));
  return a;
}

Napi::Object model_config(Napi::Env env, const ModelConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", c.arch_name);
  o.Set("hidden", c.hidden);
  o.Set("intermediate", c.intermediate);
  o.Set("layers", c.layers);
  o.Set("heads", c.heads);
  o.Set("kvHeads", c.kv_heads);
  o.Set("headDim", c.head_dim);
  o.Set("vocab", c.vocab);
  o.Set("maxContext", c.max_context);
  Napi::Array eos = Napi::Array::New(env, c.eos_ids.size());
  for (size_t i = 0; i < c.eos_ids.size(); i++) eos.Set(uint32_t(i), c.eos_ids[i]);
  o.Set("eosIds", eos);
  o.Set("tied", c.tied_embeddings);
  return o;
}

SamplingParams sampling(const Napi::Object& o) {
  SamplingParams p;
  p.temperature = float(number(o, "temperature", 0.0));
  p.top_k = int(number(o, "topK", 0));
  p.top_p = float(number(o, "topP", 1.0));
  if (!(p.temperature >= 0.0f)) throw Napi::RangeError::New(o.Env(), "temperature must be >= 0");
  if (p.top_k < 0) throw Napi::RangeError::New(o.Env(), "topK must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) throw Napi::RangeError::New(o.Env(), "topP must be in (0, 1]");
  return p;
}

static std::vector<std::vector<int32_t>> id_lists(const Napi::Object& o, const char* key) {
  std::vector<std::vector<int32_t>> out;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return out;
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of id lists");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++)
    out.push_back(ids(a.Get(i), std::string(key) + "[" + std::to_string(i) + "]"));
  return out;
}

static std::vector<int32_t> opt_ids(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() || v.IsNull() ? std::vector<int32_t>{} : ids(v, key);
}

HogwildConfig run_config(const Napi::Object& o, int vocab) {
  HogwildConfig c;
  c.workers = int(required_number(o, "workers"));
  c.max_workers = int(number(o, "maxWorkers", 16));
  try {
    c.layout = parse_layout(string(o, "layout", "combined"));
  } catch (const std::exception& e) {
    throw Napi::TypeError::New(o.Env(), e.what());
  }
  c.prompt = opt_ids(o, "promptIds");
  c.first_input = id_lists(o, "workerFirstIds");
  c.header_prefix = id_lists(o, "headerPrefixIds");
  c.digits = opt_ids(o, "digitIds");
  c.header_suffix = opt_ids(o, "headerSuffixIds");
  c.header_others = opt_ids(o, "headerOthersIds");
  c.header_own = opt_ids(o, "headerOwnIds");
  c.self_check = opt_ids(o, "selfCheckIds");
  c.self_check_interval = int(number(o, "selfCheckInterval", 1000));
  c.finisher = opt_ids(o, "finisherIds");
  c.finisher_max_tokens = int(number(o, "finisherMaxTokens", 64));
  c.eos = opt_ids(o, "eosIds");
  c.sampling = sampling(o);
  c.seed = uint64_t(number(o, "seed", 0));
  c.max_tokens = int(number(o, "maxTokens", 1024));
  c.max_context = int(number(o, "maxContext", 0));
  c.max_context_setting = string(o, "maxContextSetting", "maxContext");
  c.prefill_chunk = int(number(o, "prefillChunk", 128));
  c.prefill_report_s = number(o, "prefillReportSeconds", 1.0);
  c.kv_budget_bytes = number(o, "kvBudgetBytes", 0);
  c.kv_budget_setting = string(o, "kvBudgetSetting", "kvBudgetBytes");
  c.attention_shares = boolean(o, "attentionShares", false);
  c.key_attention = parse_key_attention(string(o, "keyAttention", "auto"));
  c.raw = boolean(o, "raw", false);
  c.raw_steps = int(number(o, "rawSteps", 0));
  c.raw_step_ids = opt_ids(o, "rawStepIds");
  c.top_logits = int(number(o, "topLogits", 0));

  // The vocabulary's bytes: one buffer plus vocab+1 offsets.
  Napi::Value bytes = o.Get("tokenBytes"), offsets = o.Get("tokenOffsets");
  if (bytes.IsTypedArray() && offsets.IsTypedArray()) {
    Napi::Uint8Array b = bytes.As<Napi::Uint8Array>();
    std::vector<int32_t> off = ids(offsets, "tokenOffsets");
    for (size_t i = 0; i + 1 < off.size(); i++) {
      if (off[i] < 0 || off[i + 1] < off[i] || size_t(off[i + 1]) > b.ElementLength())
        throw Napi::RangeError::New(o.Env(), "tokenOffsets are not increasing offsets into tokenBytes");
      c.token_bytes.emplace_back(reinterpret_cast<const char*>(b.Data()) + off[i], size_t(off[i + 1] - off[i]));
    }
  } else if (!c.raw) {
    throw Napi::TypeError::New(o.Env(), "tokenBytes (Uint8Array) and tokenOffsets (Int32Array) are required");
  }
  (void)vocab;
  return c;
}

// One JavaScript object per event type; the keys are those of hogwild_native.d.ts.
namespace {

Napi::Array int32_arrays(Napi::Env env, const std::vector<std::vector<int32_t>>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(uint32_t(i), int32_array(env, v[i]));
  return a;
}

Napi::Array float32_arrays(Napi::Env env, const std::vector<std::vector<float>>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(uint32_t(i), float32_array(env, v[i].data(), v[i].size()));
  return a;
}

struct EventToJs {
  Napi::Env env;

  Napi::Object typed(const char* type) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", type);
    return o;
  }

  Napi::Object operator()(const RunStateEvent& e) const {
    Napi::Object o = typed("run-state");
    o.Set("state", run_phase_name(e.state));
    if (!e.message.empty()) o.Set("message", e.message);
    return o;
  }
  Napi::Object operator()(const ProgressEvent& e) const {
    Napi::Object o = typed("progress");
    o.Set("phase", "prefill");  // the one phase that reports progress
    o.Set("done", e.done);
    o.Set("total", e.total);
    o.Set("tokensPerSecond", e.tokens_per_second);
    return o;
  }
  Napi::Object operator()(const ErrorEvent& e) const {
    Napi::Object o = typed("error");
    o.Set("message", e.message);
    return o;
  }
  Napi::Object operator()(const WorkerEvent& e) const {
    Napi::Object o = typed("worker");
    o.Set("worker", e.worker);
    o.Set("state", worker_phase_name(e.state));
    o.Set("forkedFrom", e.forked_from);
    o.Set("temperature", e.temperature);
    return o;
  }
  Napi::Object operator()(const TokensEvent& e) const {
    Napi::Object o = typed("tokens");
    o.Set("worker", e.worker);
    o.Set("step", e.step);
    o.Set("ids", int32_array(env, e.ids));
    return o;
  }
  Napi::Object operator()(const StepFinishedEvent& e) const {
    Napi::Object o = typed("step-finished");
    o.Set("worker", e.worker);
    o.Set("step", e.step);
    o.Set("historyBlock", e.history_block);
    o.Set("ids", int32_array(env, e.ids));
    return o;
  }
  Napi::Object operator()(const BlockEvent& e) const {
    Napi::Object o = typed("block");
    o.Set("op", block_op_name(e.op));
    o.Set("block", e.block);
    o.Set("kind", block_kind_name(e.kind));
    o.Set("owner", e.owner);
    o.Set("length", e.length);
    o.Set("step", e.step);
    return o;
  }
  Napi::Object operator()(const ViewsEvent& e) const {
    Napi::Object o = typed("views");
    o.Set("step", e.step);
    o.Set("views", int32_arrays(env, e.views));
    return o;
  }
  Napi::Object operator()(const AttentionEvent& e) const {
    Napi::Object o = typed("attention");
    o.Set("step", e.step);
    o.Set("shares", float32_arrays(env, e.shares));
    o.Set("layerShares", float32_arrays(env, e.layer_shares));
    return o;
  }
  Napi::Object operator()(const StatsEvent& e) const {
    Napi::Object o = typed("stats");
    o.Set("step", e.step);
    o.Set("tokens", e.tokens);
    o.Set("tokensPerSecond", e.tokens_per_second);
    o.Set("msPerStep", e.ms_per_step);
    o.Set("kvBytes", e.kv_bytes);
    return o;
  }
  Napi::Object operator()(const NoteEvent& e) const {
    Napi::Object o = typed("note");
    o.Set("target", e.target);
    o.Set("block", e.block);
    o.Set("ids", int32_array(env, e.ids));
    return o;
  }
  Napi::Object operator()(const FinisherTokensEvent& e) const {
    Napi::Object o = typed("finisher-tokens");
    o.Set("ids", int32_array(env, e.ids));
    return o;
  }
  Napi::Object operator()(const RawResultEvent& e) const {
    Napi::Object o = typed("raw-result");
    Napi::Array workers = Napi::Array::New(env, e.workers.size());
    for (size_t w = 0; w < e.workers.size(); w++) {
      const RawResultEvent::Worker& rw = e.workers[w];
      Napi::Object r = Napi::Object::New(env);
      r.Set("ids", int32_array(env, rw.ids));
      r.Set("topIds", int32_array(env, rw.top_ids));
      r.Set("topLogits", float32_array(env, rw.top_logits.data(), rw.top_logits.size()));
      workers.Set(uint32_t(w), r);
    }
    o.Set("workers", workers);
    return o;
  }
};

}  // namespace

Napi::Object event(Napi::Env env, const Event& e) {
  return std::visit(EventToJs{env}, e);
}

Napi::Object inspect_result(Napi::Env env, const InspectResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("block", r.block);
  o.Set("index", r.index);
  o.Set("token", r.token);
  o.Set("author", r.author);
  o.Set("step", r.step);
  Napi::Array seen = Napi::Array::New(env, r.seen.size());
  for (size_t i = 0; i < r.seen.size(); i++) {
    Napi::Object s = Napi::Object::New(env);
    s.Set("worker", r.seen[i].worker);
    s.Set("position", r.seen[i].position);
    s.Set("rotation", r.seen[i].rotation);
    seen.Set(uint32_t(i), s);
  }
  o.Set("seenAt", seen);
  if (!r.attention.empty()) {
    Napi::Array a = Napi::Array::New(env, r.attention.size());
    for (size_t i = 0; i < r.attention.size(); i++) a.Set(uint32_t(i), r.attention[i]);
    o.Set("attention", a);
    o.Set("attentionStep", r.attention_step);
  }
  o.Set("attentionPending", r.attention_pending);
  return o;
}

}  // namespace hw::js
