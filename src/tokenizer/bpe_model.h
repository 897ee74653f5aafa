// The tokenizer.json "model" of type BPE: vocabulary, ranked merges, and the merge loop that
// turns one pre-tokenized word into token ids. Handles both merge formats ("a b" strings and
// ["a", "b"] pairs), ignore_merges (a word already in the vocabulary is one token), byte fallback
// (<0xXX> tokens for characters missing from the vocabulary) and unk / fuse_unk.
// Per-word results are cached (at most 10,000 words, as in tokenizers) in a thread-safe cache,
// so a BpeModel may be used concurrently. A batch of words is merged several at a time,
// interleaved, with each word's next merge-rule lookups prefetched while the other words advance:
// the lookups miss the CPU caches (280,000 rules for llama3), and one word's are a dependent chain.
// Short words are merged by a scan for the leftmost lowest-rank pair rather than a heap, where
// that gives the heap's ids (every id names one token, as in every real vocabulary).
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_fields.h"
#include "tokenizer/merge_table.h"
#include "tokenizer/token_table.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/word_cache.h"

namespace tandem::tokenizer {

class BpeModel {
 public:
  // Words whose ids the cache keeps at most (as tokenizers' BPE); later new words are merged
  // every time.
  static constexpr size_t kWordCacheCapacity = WordCache::kCapacity;

  // `node` is tokenizer.json's "model"; `where` names it in errors.
  static BpeModel from_json(const Json& node, const std::string& where);
  // The same, with vocab and merges already read into `tables` (node's own are ignored).
  static BpeModel from_tables(const Json& node, const BpeTables& tables, const std::string& where);
  BpeModel();  // an empty model (no vocabulary); use from_json
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;
  ~BpeModel();

  // Appends the ids of one word (already normalized and pre-tokenized).
  void tokenize(std::string_view word, std::vector<int>& ids) const;
  // Appends the ids of each word in order: the same ids as tokenize() word by word.
  void tokenize(std::span<const std::string_view> words, std::vector<int>& ids) const;
  // Words in the cache now (at most kWordCacheCapacity).
  [[nodiscard]] size_t num_cached_words() const;

  // Merges every word with the heap loop, never the short-word scan (the reference the scan is
  // tested against).
  void use_heap_merges_only() { scan_short_words_ = false; }
  [[nodiscard]] bool scans_short_words() const { return scan_short_words_; }

  [[nodiscard]] std::optional<int> token_to_id(std::string_view token) const;
  // The token of `id`, or nullptr where the vocabulary has no such id.
  [[nodiscard]] const std::string* id_to_token(int id) const;
  // One past the largest id in the vocabulary.
  [[nodiscard]] int id_limit() const { return static_cast<int>(id_to_token_.size()); }

 private:
  using MergeRule = MergeTable::Rule;
  // One symbol of a word being merged, in a doubly linked list over the symbol array.
  struct Symbol {
    int id;
    int prev;    // index of the previous live symbol, -1 at the start
    int next;    // index of the next live symbol, -1 at the end
    size_t len;  // bytes of the word covered; 0 once merged into its left neighbour
  };
  struct MergeLane;
  struct WordIds {  // where one word's ids sit in a batch's id buffer
    uint32_t begin = 0, count = 0;
  };

  void load_vocab(const BpeTables& tables, const std::string& where);
  void load_merges(const BpeTables& tables, const std::string& where);
  // `where` names the merges list; errors name the entry `where`[rank].
  void add_merge(const std::string& left, const std::string& right, const std::string& joined,
                 int rank, const std::string& where);
  // At most kBatchWords words of a batch: their ids appended to `ids` in order.
  void tokenize_chunk(std::span<const std::string_view> words, std::vector<int>& ids) const;
  // Merges words[i] for each i in `todo`, interleaved; each one's ids appended to `buffer` and
  // recorded in spans[i].
  void merge_words(std::span<const std::string_view> words, std::span<const uint32_t> todo,
                   std::vector<int>& buffer, std::span<WordIds> spans) const;
  void start_lane(MergeLane& lane, std::string_view word) const;
  // One merge of the lane's word; false once the word has no merge left.
  bool advance_lane(MergeLane& lane) const;
  bool advance_lane_heap(MergeLane& lane) const;
  bool advance_lane_scan(MergeLane& lane) const;
  // `symbols` <- one symbol per character of `word`.
  void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  static void add_symbol(std::vector<Symbol>& symbols, int id, size_t len);
  [[nodiscard]] const MergeRule* find_merge(int left, int right) const;

  TokenTable vocab_;
  std::vector<std::optional<std::string>> id_to_token_;  // (id_limit,) token of each id
  MergeTable merges_;
  std::optional<int> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  // Whether short words are merged by the scan (leftmost lowest-rank pair, no heap): the heap's
  // result whenever every id names one token (see advance_lane_scan).
  bool scan_short_words_ = false;
  std::array<int, 256> byte_ids_{};  // (256,) id of "<0xXX>" per byte, -1 if absent
  // (kDirectCodePoints,) the id of each one- or two-byte character that is a token, else -1:
  // a word's characters are looked up here, not hashed (byte-level BPE words are all such).
  static constexpr uint32_t kDirectCodePoints = 0x800;
  std::vector<int> char_ids_;
  [[nodiscard]] std::optional<int> char_to_id(std::string_view ch) const;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace tandem::tokenizer
