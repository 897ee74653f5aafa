// wait_for_stats: an engine publishes its stats after each step (and tier writes finish in the
// background), so a test that checks a counter waits until `ready` holds, or `timeout` passes;
// it gets the last stats seen either way and asserts on those.
#pragma once
#include <chrono>
#include <functional>
#include <thread>

#include "engine/llm_engine.h"

namespace tandem::test {

inline EngineStats wait_for_stats(const LlmEngine& engine,
                                  const std::function<bool(const EngineStats&)>& ready,
                                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  EngineStats s = engine.stats();
  while (!ready(s) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = engine.stats();
  }
  return s;
}

}  // namespace tandem::test
