// BPE loading and the merge loop. The loop follows tokenizers' Word::merge_all: a min-heap of
// candidate merges ordered by (rank, position), stale entries skipped when popped, new candidates
// pushed for the merged symbol's neighbours: O(n log n) in the word length. A batch's words that
// need merging run on kMergeLanes lanes in turn, one merge per lane per turn: the rule lookups a
// merge creates are prefetched, and answered on the lane's next turn.
#include "tokenizer/bpe_model.h"

#include <algorithm>
#include <climits>
#include <span>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer {
namespace {

constexpr int kMaxVocabId = 1 << 24;  // refuse absurd ids from a malformed file
// Words looked up together (their vocabulary slots prefetched first), and words merged at once:
// enough lanes that a lane's prefetched lookups have arrived by its next turn.
constexpr size_t kBatchWords = 128;
constexpr size_t kMergeLanes = 8;
// Words of at most this many symbols are merged by a scan over their pairs' ranks (O(n) a merge,
// no heap); longer ones by the heap (O(log n) a merge).
constexpr size_t kScanSymbols = 64;
constexpr int kNoMerge = INT_MAX;  // the rank of a pair with no rule
struct Candidate {
  int rank;
  int pos;  // index of the left symbol
  int new_id;
  int left, right;  // the pair's ids when pushed: unchanged at the pop, the rule still holds
};
struct LaterCandidate {  // std::push_heap / pop_heap keep the lowest (rank, pos) on top
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// Optional string member that must be null or empty for this implementation.
void require_unset(const Json& node, std::string_view key, const std::string& where) {
  auto it = node.find(key);
  if (it == node.end() || it->is_null() || (it->is_string() && it->get<std::string>().empty()))
    return;
  fail("{}.{}: unsupported BPE option (value {}); only null is supported", where, key, it->dump());
}

}  // namespace

// One word being merged on a lane of merge_words.
struct BpeModel::MergeLane {
  int word = -1;                // index into the batch; -1: the lane is idle
  bool scan = false;            // merged by advance_lane_scan, else by advance_lane_heap
  std::vector<Symbol> symbols;  // (characters,) the word's symbols
  std::vector<Candidate> heap;  // heap loop: candidate merges, a min-heap on (rank, pos)
  std::vector<int> ranks;       // scan: (characters,) rank of the pair each symbol starts
  std::vector<int> merged;      // scan: (characters,) the id that pair merges into
  std::vector<int> pending;     // left symbols whose pair with the next awaits its rule lookup
};

void BpeModel::add_symbol(std::vector<Symbol>& symbols, int id, size_t len) {
  const int index = static_cast<int>(symbols.size());
  if (index > 0) symbols.back().next = index;
  symbols.push_back({id, index - 1, -1, len});
}

BpeModel::BpeModel() : cache_(std::make_unique<WordCache>()) { byte_ids_.fill(-1); }
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
BpeModel::~BpeModel() = default;

namespace {

// Rejects models and options this implementation does not handle.
void check_model_options(const Json& node, const std::string& where) {
  if (!node.is_object()) fail("{}: expected an object, got {}", where, node.type_name());
  const auto type = node.find("type");
  if (type != node.end() && *type != "BPE")
    fail("{}: unsupported model type {} (only BPE is supported)", where, type->dump());
  auto dropout = node.find("dropout");
  if (dropout != node.end() && !dropout->is_null() && *dropout != 0.0)
    fail("{}.dropout: BPE dropout {} is not supported", where, dropout->dump());
  require_unset(node, "continuing_subword_prefix", where);
  require_unset(node, "end_of_word_suffix", where);
}

// model.vocab and model.merges of a JSON tree as BpeTables.
BpeTables tables_from_json(const Json& node, const std::string& where) {
  BpeTables t;
  const Json& vocab = require_member(node, "vocab", where);
  if (!vocab.is_object()) fail("{}.vocab: expected an object of token -> id", where);
  for (const auto& [token, value] : vocab.items()) {
    if (!value.is_number_integer())
      fail("{}.vocab: token \"{}\" has invalid id {}", where, token, value.dump());
    t.vocab.emplace_back(token, value.get<int64_t>());
  }
  const Json& merges = require_member(node, "merges", where);
  if (!merges.is_array()) fail("{}.merges: expected an array", where);
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& m = merges[i];
    const std::string item = fmt::format("{}.merges[{}]", where, i);
    if (m.is_string()) {
      append_merge_line(m.get_ref<const std::string&>(), t.merges, item);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      t.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail("{}: expected \"left right\" or [\"left\", \"right\"], got {}", item, m.dump());
    }
  }
  return t;
}

}  // namespace

BpeModel BpeModel::from_json(const Json& node, const std::string& where) {
  check_model_options(node, where);
  return from_tables(node, tables_from_json(node, where), where);
}

BpeModel BpeModel::from_tables(const Json& node, const BpeTables& tables,
                               const std::string& where) {
  check_model_options(node, where);
  BpeModel m;
  m.load_vocab(tables, where + ".vocab");
  m.load_merges(tables, where + ".merges");
  m.fuse_unk_ = optional_bool(node, "fuse_unk", where, false);
  m.byte_fallback_ = optional_bool(node, "byte_fallback", where, false);
  m.ignore_merges_ = optional_bool(node, "ignore_merges", where, false);
  auto unk = node.find("unk_token");
  if (unk != node.end() && !unk->is_null()) {
    if (!unk->is_string()) fail("{}.unk_token: expected a string, got {}", where, unk->dump());
    m.unk_id_ = m.token_to_id(unk->get<std::string>());
    if (!m.unk_id_) fail("{}.unk_token: {} is not in the vocabulary", where, unk->dump());
  }
  // The scan matches the heap when a merge's new id names one string: a candidate whose pair has
  // changed since it was pushed then never passes the heap's check (its pair's text has grown),
  // which holds where every id names one token and no symbol's token is empty.
  std::vector<uint8_t> named(size_t(m.id_limit()), 0);
  bool unique_ids = true;
  for (const auto& [token, id] : tables.vocab) {
    if (m.vocab_.find(token) != id) continue;  // a repeated token: its first id stands
    unique_ids = unique_ids && !named[size_t(id)] && !token.empty();
    named[size_t(id)] = 1;
  }
  m.scan_short_words_ = unique_ids && (!m.unk_id_ || !m.id_to_token(*m.unk_id_)->empty());
  for (int b = 0; b < 256; ++b)
    m.byte_ids_[b] = m.token_to_id(fmt::format("<0x{:02X}>", b)).value_or(-1);
  m.char_ids_.assign(kDirectCodePoints, -1);
  for (uint32_t cp = 0; cp < kDirectCodePoints; ++cp) {
    std::string ch;
    if (cp < 0x80) {
      ch.push_back(char(cp));
    } else {
      ch.push_back(char(0xC0 | (cp >> 6)));
      ch.push_back(char(0x80 | (cp & 0x3F)));
    }
    m.char_ids_[cp] = m.token_to_id(ch).value_or(-1);
  }
  return m;
}

void BpeModel::load_vocab(const BpeTables& tables, const std::string& where) {
  vocab_.reserve(tables.vocab.size());
  for (const auto& [token, id] : tables.vocab) {
    if (id < 0 || id >= kMaxVocabId) fail("{}: token \"{}\" has invalid id {}", where, token, id);
    vocab_.insert(token, static_cast<int>(id));
    if (static_cast<size_t>(id) >= id_to_token_.size()) id_to_token_.resize(id + 1);
    if (!id_to_token_[id]) id_to_token_[id] = token;
  }
}

void BpeModel::load_merges(const BpeTables& tables, const std::string& where) {
  merges_.reserve(tables.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < tables.merges.size(); ++rank) {
    const auto& [left, right] = tables.merges[rank];
    joined.assign(left).append(right);
    add_merge(left, right, joined, static_cast<int>(rank), where);
  }
}

void BpeModel::add_merge(const std::string& left, const std::string& right,
                         const std::string& joined, int rank, const std::string& where) {
  const auto l = token_to_id(left), r = token_to_id(right), merged = token_to_id(joined);
  if (!l || !r)
    fail("{}[{}]: merge token \"{}\" is not in the vocabulary", where, rank, !l ? left : right);
  if (!merged) fail("{}[{}]: merged token \"{}\" is not in the vocabulary", where, rank, joined);
  merges_.insert_or_assign(*l, *r, MergeRule{rank, *merged});  // later duplicates win
}

std::optional<int> BpeModel::token_to_id(std::string_view token) const {
  const int id = vocab_.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

const std::string* BpeModel::id_to_token(int id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !id_to_token_[id]) return nullptr;
  return &*id_to_token_[id];
}

const BpeModel::MergeRule* BpeModel::find_merge(int left, int right) const {
  return merges_.find(left, right);
}

std::optional<int> BpeModel::char_to_id(std::string_view ch) const {
  // Only well-formed one- and two-byte sequences are decoded (a stray byte goes to the hash).
  uint32_t cp = kDirectCodePoints;
  const uint8_t b0 = ch.empty() ? 0xFF : uint8_t(ch[0]);
  if (ch.size() == 1 && b0 < 0x80) {
    cp = b0;
  } else if (ch.size() == 2 && b0 >= 0xC2 && b0 < 0xE0 && (uint8_t(ch[1]) & 0xC0) == 0x80) {
    cp = (uint32_t(b0) & 0x1F) << 6 | (uint32_t(uint8_t(ch[1])) & 0x3F);
  }
  if (cp < kDirectCodePoints && cp < char_ids_.size()) {
    const int id = char_ids_[cp];
    return id >= 0 ? std::optional<int>(id) : std::nullopt;
  }
  return token_to_id(ch);
}

void BpeModel::tokenize(std::string_view word, std::vector<int>& ids) const {
  tokenize(std::span<const std::string_view>(&word, 1), ids);
}

void BpeModel::tokenize(std::span<const std::string_view> words, std::vector<int>& ids) const {
  for (size_t begin = 0; begin < words.size(); begin += kBatchWords)
    tokenize_chunk(words.subspan(begin, std::min(kBatchWords, words.size() - begin)), ids);
}

size_t BpeModel::num_cached_words() const { return cache_ ? cache_->size() : 0; }

void BpeModel::tokenize_chunk(std::span<const std::string_view> words,
                              std::vector<int>& ids) const {
  std::array<uint64_t, kBatchWords> hashes;  // (words,) TokenTable::hash of each word
  for (size_t i = 0; i < words.size(); ++i) {
    hashes[i] = TokenTable::hash(words[i]);
    if (ignore_merges_) vocab_.prefetch(hashes[i]);
  }
  std::vector<int> buffer;                 // the ids of the words not emitted directly
  std::array<WordIds, kBatchWords> spans;  // (words,) each word's ids in `buffer`
  std::array<int, kBatchWords> whole;      // (words,) the word's id when it is one token, else -1
  std::vector<uint32_t> todo;              // words to merge
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string_view word = words[i];
    whole[i] = -1;
    if (word.empty()) {
      spans[i] = {};
      continue;
    }
    if (ignore_merges_ && (whole[i] = vocab_.find(word, hashes[i])) >= 0) continue;
    const auto begin = uint32_t(buffer.size());
    if (cache_->get(word, hashes[i], buffer)) {
      spans[i] = {begin, uint32_t(buffer.size() - begin)};
      continue;
    }
    todo.push_back(uint32_t(i));
  }
  if (!todo.empty()) merge_words(words, todo, buffer, spans);
  for (const uint32_t i : todo)
    cache_->put(words[i], hashes[i],
                std::span<const int>(buffer).subspan(spans[i].begin, spans[i].count));
  for (size_t i = 0; i < words.size(); ++i) {
    if (whole[i] >= 0) {
      ids.push_back(whole[i]);
    } else {
      ids.insert(ids.end(), buffer.begin() + spans[i].begin,
                 buffer.begin() + spans[i].begin + spans[i].count);
    }
  }
}

void BpeModel::merge_words(std::span<const std::string_view> words, std::span<const uint32_t> todo,
                           std::vector<int>& buffer, std::span<WordIds> spans) const {
  std::array<MergeLane, kMergeLanes> lanes;
  size_t next = 0;  // the next word of `todo` to start
  for (bool busy = true; busy;) {
    busy = false;
    for (MergeLane& lane : lanes) {
      if (lane.word < 0) {
        if (next == todo.size()) continue;
        lane.word = int(todo[next++]);
        start_lane(lane, words[size_t(lane.word)]);  // its lookups are answered next turn
        busy = true;
        continue;
      }
      busy = true;
      if (advance_lane(lane)) continue;
      const auto begin = uint32_t(buffer.size());
      for (const Symbol& s : lane.symbols)
        if (s.len > 0) buffer.push_back(s.id);
      spans[size_t(lane.word)] = {begin, uint32_t(buffer.size() - begin)};
      lane.word = -1;
    }
  }
}

void BpeModel::start_lane(MergeLane& lane, std::string_view word) const {
  initial_symbols(word, lane.symbols);
  lane.scan = scan_short_words_ && lane.symbols.size() <= kScanSymbols;
  lane.heap.clear();
  lane.ranks.assign(lane.symbols.size(), kNoMerge);
  lane.merged.resize(lane.symbols.size());
  lane.pending.clear();
  for (size_t i = 0; i + 1 < lane.symbols.size(); ++i) {
    lane.pending.push_back(int(i));
    merges_.prefetch(lane.symbols[i].id, lane.symbols[i + 1].id);
  }
}

bool BpeModel::advance_lane(MergeLane& lane) const {
  return lane.scan ? advance_lane_scan(lane) : advance_lane_heap(lane);
}

// The heap's next valid candidate is the live pair of lowest (rank, position) whenever a changed
// pair can never pass its check (scan_short_words_): so pick that pair directly from the ranks.
bool BpeModel::advance_lane_scan(MergeLane& lane) const {
  std::vector<Symbol>& symbols = lane.symbols;
  int* ranks = lane.ranks.data();
  for (const int pos : lane.pending) {
    const MergeRule* m = find_merge(symbols[pos].id, symbols[symbols[pos].next].id);
    ranks[pos] = m ? m->rank : kNoMerge;
    lane.merged[pos] = m ? m->new_id : -1;
  }
  lane.pending.clear();
  int best = kNoMerge, at = -1;  // the leftmost lowest rank: positions ascend along the word
  for (int i = 0, n = int(symbols.size()); i < n; ++i) {
    if (ranks[i] < best) {
      best = ranks[i];
      at = i;
    }
  }
  if (at < 0) return false;
  Symbol& left = symbols[at];
  Symbol& right = symbols[left.next];
  ranks[left.next] = kNoMerge;
  left.id = lane.merged[at];
  left.len += right.len;
  right.len = 0;
  left.next = right.next;
  if (right.next >= 0) symbols[right.next].prev = at;
  ranks[at] = kNoMerge;
  if (left.prev >= 0) {
    ranks[left.prev] = kNoMerge;
    lane.pending.push_back(left.prev);
    merges_.prefetch(symbols[left.prev].id, left.id);
  }
  if (left.next >= 0) {
    lane.pending.push_back(at);
    merges_.prefetch(left.id, symbols[left.next].id);
  }
  return true;
}

bool BpeModel::advance_lane_heap(MergeLane& lane) const {
  std::vector<Symbol>& symbols = lane.symbols;
  std::vector<Candidate>& heap = lane.heap;
  for (const int pos : lane.pending) {  // pairs whose symbols are live and unchanged since
    const int left = symbols[pos].id, right = symbols[symbols[pos].next].id;
    if (const MergeRule* m = find_merge(left, right)) {
      heap.push_back({m->rank, pos, m->new_id, left, right});
      std::push_heap(heap.begin(), heap.end(), LaterCandidate{});
    }
  }
  lane.pending.clear();
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), LaterCandidate{});
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    const Symbol right = symbols[left.next];
    if (left.id != top.left || right.id != top.right) {  // the pair changed since the push
      const MergeRule* m = find_merge(left.id, right.id);
      if (!m || m->new_id != top.new_id) continue;  // stale candidate
    }
    symbols[left.next].len = 0;
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) {
      lane.pending.push_back(left.prev);
      merges_.prefetch(symbols[left.prev].id, left.id);
    }
    if (left.next >= 0) {
      lane.pending.push_back(top.pos);
      merges_.prefetch(left.id, symbols[left.next].id);
    }
    return true;
  }
  return false;
}

// One symbol per character: its vocabulary id, else one per byte through <0xXX> tokens, else unk.
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  symbols.clear();  // (characters,) in word order
  symbols.reserve(word.size());
  size_t pending_unk = 0;  // bytes covered by an unk not yet added (fused while fuse_unk)
  for (size_t pos = 0; pos < word.size();) {
    const size_t n = unicode::char_length(word, pos);
    const std::string_view ch = word.substr(pos, n);
    pos += n;
    if (auto id = char_to_id(ch)) {
      if (pending_unk > 0) add_symbol(symbols, *unk_id_, pending_unk);
      pending_unk = 0;
      add_symbol(symbols, *id, n);
      continue;
    }
    if (byte_fallback_ && std::all_of(ch.begin(), ch.end(), [&](char c) {
          return byte_ids_[static_cast<uint8_t>(c)] >= 0;
        })) {
      // As in tokenizers, a pending unk is not flushed before byte-fallback tokens.
      for (char c : ch) add_symbol(symbols, byte_ids_[static_cast<uint8_t>(c)], 1);
      continue;
    }
    if (!unk_id_) continue;  // no unk token: the character is dropped
    if (pending_unk > 0 && !fuse_unk_) {
      add_symbol(symbols, *unk_id_, pending_unk);
      pending_unk = 0;
    }
    pending_unk += n;
  }
  if (pending_unk > 0) add_symbol(symbols, *unk_id_, pending_unk);
}

}  // namespace tandem::tokenizer
