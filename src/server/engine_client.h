// EngineClient: the narrow view of the engine the OpenAI layer uses (submit, abort, stats).
// The server runs on LlmEngine through LlmEngineClient; handler tests can put a scripted
// engine behind the same interface.
#pragma once
#include <memory>
#include <string>

#include "engine/llm_engine.h"
#include "engine/request.h"

namespace tandem {

class EngineClient {
 public:
  virtual ~EngineClient() = default;
  // Thread-safe. The stream receives outputs until one with finish != kNone.
  virtual void add_request(EngineRequest request, std::shared_ptr<RequestStream> stream) = 0;
  // Thread-safe; unknown or finished ids are ignored.
  virtual void abort_request(const std::string& request_id) = 0;
  // Thread-safe; the requests of KV transfer `transfer_id` and the transfer itself are dropped.
  virtual void abort_transfer(const std::string& transfer_id) = 0;
  [[nodiscard]] virtual EngineStats stats() const = 0;
};

class LlmEngineClient final : public EngineClient {
 public:
  explicit LlmEngineClient(LlmEngine& engine) : engine_(engine) {}
  void add_request(EngineRequest request, std::shared_ptr<RequestStream> stream) override {
    engine_.add_request(std::move(request), std::move(stream));
  }
  void abort_request(const std::string& request_id) override { engine_.abort_request(request_id); }
  void abort_transfer(const std::string& transfer_id) override {
    engine_.abort_transfer(transfer_id);
  }
  EngineStats stats() const override { return engine_.stats(); }

 private:
  LlmEngine& engine_;
};

}  // namespace tandem
