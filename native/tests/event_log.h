// A run's events as the engine tests collect them (the sink runs on the engine thread), with
// lookups by event type.
#pragma once
#include <functional>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "hogwild/engine.h"

struct EventLog {
  std::mutex mu;  // guards `events` while the run goes on
  std::vector<hw::Event> events;
  std::function<void(const hw::Event&)> on_event;  // runs on the engine thread, in order

  hw::HogwildRun::EventSink sink() {
    return [this](std::vector<hw::Event>&& batch) {
      for (hw::Event& e : batch) {
        if (on_event) on_event(e);
        std::lock_guard<std::mutex> lock(mu);
        events.push_back(std::move(e));
      }
    };
  }

  // Every event of type T, in order (read after the run, or under `mu`).
  template <typename T>
  std::vector<const T*> all() const {
    std::vector<const T*> out;
    for (const hw::Event& e : events)
      if (const T* x = std::get_if<T>(&e)) out.push_back(x);
    return out;
  }
  template <typename T>
  const T* first() const {
    const auto v = all<T>();
    return v.empty() ? nullptr : v.front();
  }
  template <typename T>
  const T* last() const {
    const auto v = all<T>();
    return v.empty() ? nullptr : v.back();
  }
  template <typename T>
  int index_of() const {
    for (size_t i = 0; i < events.size(); i++)
      if (std::holds_alternative<T>(events[i])) return int(i);
    return -1;
  }

  // The last run-state's name ("" before any).
  std::string final_state() {
    std::lock_guard<std::mutex> lock(mu);
    const hw::RunStateEvent* s = last<hw::RunStateEvent>();
    return s ? hw::run_phase_name(s->state) : "";
  }
  // The ids of the raw result, per worker (empty when there is none).
  std::vector<std::vector<int32_t>> raw_ids() const {
    std::vector<std::vector<int32_t>> ids;
    if (const hw::RawResultEvent* r = last<hw::RawResultEvent>())
      for (const auto& w : r->workers) ids.push_back(w.ids);
    return ids;
  }
};
