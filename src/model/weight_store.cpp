#include "model/weight_store.h"

#include <set>

#include "core/error.h"
#include "core/json_file.h"

namespace tandem {

namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The shard file names listed in model.safetensors.index.json's weight_map, with the tensor
// each is expected to hold.
std::map<std::string, std::string> read_index(const std::filesystem::path& index_path) {
  auto j = read_json_file(index_path);
  TANDEM_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
               "{}: missing 'weight_map' object", index_path.string());
  std::map<std::string, std::string> tensor_to_file;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    TANDEM_CHECK(file.is_string(), "{}: weight_map['{}'] is not a file name",
                 index_path.string(), tensor);
    std::string f = file.get<std::string>();
    TANDEM_CHECK(!f.empty() && f.find('/') == std::string::npos && f != "." && f != "..",
                 "{}: weight_map['{}'] = '{}' is not a plain file name", index_path.string(),
                 tensor, f);
    tensor_to_file[tensor] = f;
  }
  return tensor_to_file;
}

}  // namespace

WeightStore WeightStore::open(const std::filesystem::path& dir) {
  WeightStore store;
  store.dir_ = dir;
  auto single = dir / "model.safetensors";
  auto index = dir / "model.safetensors.index.json";
  std::map<std::string, std::string> expected;  // tensor -> shard, when sharded
  std::vector<std::filesystem::path> paths;
  if (std::filesystem::exists(index)) {
    expected = read_index(index);
    std::set<std::string> shards;
    for (const auto& [t, f] : expected) shards.insert(f);
    for (const auto& f : shards) paths.push_back(dir / f);
  } else if (std::filesystem::exists(single)) {
    paths.push_back(single);
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json", dir.string());
  }
  for (const auto& p : paths) {
    TANDEM_CHECK(std::filesystem::exists(p), "{}: shard listed in the index is missing",
                 p.string());
    store.files_.push_back(std::make_unique<SafetensorsFile>(p));
    for (const auto& [name, ref] : store.files_.back()->tensors()) {
      TANDEM_CHECK(store.tensors_.emplace(name, &ref).second,
                   "{}: tensor '{}' appears in more than one shard", p.string(), name);
    }
  }
  for (const auto& [tensor, file] : expected) {
    auto it = store.tensors_.find(tensor);
    TANDEM_CHECK(it != store.tensors_.end(), "{}: tensor '{}' listed in the index is missing",
                 (dir / file).string(), tensor);
  }
  return store;
}

const TensorRef& WeightStore::get(const std::string& name,
                                  const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  TANDEM_CHECK(it != tensors_.end(), "{}: missing tensor '{}'", dir_.string(), name);
  const TensorRef& t = *it->second;
  TANDEM_CHECK(t.shape == shape, "{}: tensor '{}' has shape {}, expected {}", t.file, name,
               shape_str(t.shape), shape_str(shape));
  return t;
}

}  // namespace tandem
