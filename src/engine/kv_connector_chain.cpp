// KvConnectorChain: hooks forwarded to every link; loads split along the chain.
#include "engine/kv_connector_chain.h"

#include <algorithm>

#include "core/error.h"
#include "engine/sequence.h"

namespace tandem {

KvConnectorChain::KvConnectorChain(std::vector<std::unique_ptr<KvConnector>> links)
    : links_(std::move(links)) {
  TANDEM_CHECK(!links_.empty(), "KV connector chain: no connectors");
  for (const auto& link : links_) TANDEM_CHECK(link != nullptr, "KV connector chain: null link");
}

bool KvConnectorChain::transfer_arriving(const Sequence& seq) {
  return std::ranges::any_of(links_,
                             [&](const auto& link) { return link->transfer_arriving(seq); });
}

int KvConnectorChain::num_loadable_tokens(const Sequence& seq, int num_computed) {
  std::vector<int> shares;
  int total = 0;
  for (const auto& link : links_) {
    shares.push_back(link->num_loadable_tokens(seq, num_computed + total));
    total += shares.back();
  }
  planned_[seq.request_id] = std::move(shares);
  return total;
}

int KvConnectorChain::load(const Sequence& seq, int num_computed, int num_tokens) {
  std::vector<int> shares(links_.size(), 0);
  if (auto it = planned_.find(seq.request_id); it != planned_.end()) {
    shares = std::move(it->second);
    planned_.erase(it);
  }
  int loaded = 0, left = num_tokens;
  bool gap = false;  // a link loaded less than planned: later links cannot continue after it
  for (size_t i = 0; i < links_.size(); ++i) {
    const int want = gap ? 0 : std::min(shares[i], left);
    const int got = links_[i]->load(seq, num_computed + loaded, want);  // 0 too: releases
    loaded += got;
    left -= got;
    gap = gap || got < want;
  }
  return loaded;
}

void KvConnectorChain::on_prompt_computed(const Sequence& seq) {
  for (const auto& link : links_) link->on_prompt_computed(seq);
}

void KvConnectorChain::on_finished(const Sequence& seq) {
  planned_.erase(seq.request_id);
  for (const auto& link : links_) link->on_finished(seq);
}

void KvConnectorChain::abort_transfer(const std::string& transfer_id) {
  for (const auto& link : links_) link->abort_transfer(transfer_id);
}

KvConnectorStats KvConnectorChain::stats() const {
  KvConnectorStats sum;
  for (const auto& link : links_) {
    KvConnectorStats s = link->stats();
    sum.prompt_tokens_received += s.prompt_tokens_received;
    sum.transfers_received += s.transfers_received;
    sum.buffer_bytes_used += s.buffer_bytes_used;
    sum.transfers_sent += s.transfers_sent;
    sum.transfer_failures += s.transfer_failures;
    sum.bytes_sent += s.bytes_sent;
    sum.transfer_seconds += s.transfer_seconds;
    sum.write_seconds += s.write_seconds;
    if (s.tiers.cpu_enabled || s.tiers.disk_enabled) sum.tiers = s.tiers;
  }
  return sum;
}

}  // namespace tandem
