// KvConnectorChain: several KV connectors acting as one, for an engine that both keeps KV tiers
// and takes part in disaggregated prefill (the prefiller: tiers, then the sender). Loads go in
// chain order, each link continuing where the one before stops: the tiers load the prompt's
// cached prefix, a receiver what was transferred past it. Every link sees every prompt and
// finish, so a prefiller pushes a prompt's whole KV — reused chunks included — to the decoder.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/kv_connector.h"

namespace tandem {

class KvConnectorChain final : public KvConnector {
 public:
  explicit KvConnectorChain(std::vector<std::unique_ptr<KvConnector>> links);

  bool transfer_arriving(const Sequence& seq) override;
  int num_loadable_tokens(const Sequence& seq, int num_computed) override;
  int load(const Sequence& seq, int num_computed, int num_tokens) override;
  void on_prompt_computed(const Sequence& seq) override;
  void on_finished(const Sequence& seq) override;
  void abort_transfer(const std::string& transfer_id) override;
  // Counters summed over the links.
  KvConnectorStats stats() const override;

 private:
  std::vector<std::unique_ptr<KvConnector>> links_;
  // Each link's share of the last num_loadable_tokens answer, by request id (engine thread).
  std::unordered_map<std::string, std::vector<int>> planned_;
};

}  // namespace tandem
