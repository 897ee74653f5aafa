// KvStoreConnector: prefix lookups across the tiers, loads, stores and the per-request log line.
#include "kvstore/kv_store_connector.h"

#include <algorithm>

#include "core/logging.h"
#include "engine/sequence.h"
#include "transfer/chunk_hash.h"

namespace tandem {

KvStoreConnector::KvStoreConnector(const KvStoreConfig& config, KvCache& kv,
                                   std::string model_fingerprint)
    : config_(config),
      kv_(kv),
      model_fingerprint_(std::move(model_fingerprint)),
      layout_(KvChunkLayout::from_shape(kv.shape())),
      store_(config.store, layout_.fingerprint(model_fingerprint_)) {
  log_info("kv tiers: chunk_size {}, CPU tier {}, disk tier {}", config.chunk_size,
           config.store.cpu_bytes > 0
               ? fmt::format("{:.1f} MiB", double(config.store.cpu_bytes) / (1 << 20))
               : "off",
           config.store.disk_dir ? fmt::format("{} ({:.1f} MiB)", config.store.disk_dir->string(),
                                               double(config.store.disk_bytes) / (1 << 20))
                                 : "off");
}

std::vector<BlockHash> KvStoreConnector::prompt_chunks(const Sequence& seq) const {
  std::span<const int32_t> prompt(seq.token_ids.data(), size_t(seq.num_prompt_tokens));
  return chunk_hashes(model_fingerprint_, prompt, config_.chunk_size, PartialChunk::kInclude,
                      seq.cache_salt);
}

int KvStoreConnector::num_loadable_tokens(const Sequence& seq, int num_computed) {
  const int cap = seq.num_prompt_tokens - 1;  // the last prompt token is always computed
  const int first = num_computed / config_.chunk_size;
  auto staged = staged_.find(seq.request_id);
  if (staged == staged_.end() || staged->second.first_chunk != first) {
    Staged fresh{first, {}};
    if (num_computed < cap) {
      std::vector<BlockHash> hashes = prompt_chunks(seq);
      for (size_t i = size_t(first); i < hashes.size(); ++i) {
        const int n = chunk_num_tokens(seq.num_prompt_tokens, config_.chunk_size, int64_t(i));
        std::optional<ChunkStore::Found> found = store_.get(hashes[i]);
        if (!found || found->chunk->num_tokens != uint32_t(n) ||
            found->chunk->bytes.size() != layout_.chunk_bytes(n)) {
          break;
        }
        fresh.chunks.push_back(std::move(*found));
        if (int(i) * config_.chunk_size + n >= cap) break;
      }
    }
    staged = staged_.insert_or_assign(seq.request_id, std::move(fresh)).first;
  }
  const int covered_end =
      first * config_.chunk_size + int(staged->second.chunks.size()) * config_.chunk_size;
  return std::max(0, std::min(covered_end, cap) - num_computed);
}

int KvStoreConnector::load(const Sequence& seq, int num_computed, int num_tokens) {
  const int begin = num_computed, end = num_computed + num_tokens;
  uint64_t by_tier[2] = {0, 0};  // tokens loaded from the CPU tier, from the disk
  int loaded_end = begin;
  if (auto staged = staged_.find(seq.request_id); staged != staged_.end()) {
    const Staged& s = staged->second;
    for (size_t j = 0; j < s.chunks.size() && loaded_end < end; ++j) {
      const int first = (s.first_chunk + int(j)) * config_.chunk_size;
      const StoredChunk& chunk = *s.chunks[j].chunk;
      const int from = std::max(begin, first), to = std::min(end, first + int(chunk.num_tokens));
      if (from >= to) continue;
      scatter_chunk_tokens(chunk.bytes, int(chunk.num_tokens), from - first, to - first,
                           seq.blocks.table, first, kv_);
      by_tier[s.chunks[j].tier == ChunkTier::kCpu ? 0 : 1] += uint64_t(to - from);
      loaded_end = to;
    }
    staged_.erase(staged);
  }
  store_.record_hit_tokens(ChunkTier::kCpu, by_tier[0]);
  store_.record_hit_tokens(ChunkTier::kDisk, by_tier[1]);
  const int hit = num_computed + (loaded_end - begin);
  log_info(
      "kv tiers: request {}: {} prompt tokens, {} hit (engine {}, cpu {}, disk {}), {} computed",
      seq.request_id, seq.num_prompt_tokens, hit, num_computed, by_tier[0], by_tier[1],
      seq.num_prompt_tokens - hit);
  return loaded_end - begin;
}

void KvStoreConnector::on_prompt_computed(const Sequence& seq) {
  std::vector<BlockHash> hashes = prompt_chunks(seq);
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (store_.contains(hashes[i])) continue;
    const int n = chunk_num_tokens(seq.num_prompt_tokens, config_.chunk_size, int64_t(i));
    auto chunk = std::make_shared<StoredChunk>();
    chunk->num_tokens = uint32_t(n);
    chunk->bytes.resize(layout_.chunk_bytes(n));
    gather_chunk(kv_, seq.blocks.table, int64_t(i) * config_.chunk_size, n, chunk->bytes);
    store_.put(hashes[i], std::move(chunk));
  }
}

void KvStoreConnector::on_finished(const Sequence& seq) { staged_.erase(seq.request_id); }

KvConnectorStats KvStoreConnector::stats() const {
  KvConnectorStats out;
  out.tiers = store_.stats();
  return out;
}

}  // namespace tandem
