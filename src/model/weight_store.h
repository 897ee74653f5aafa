// All tensors of a checkpoint directory: model.safetensors, or the shards listed in
// model.safetensors.index.json. Typed look-ups check shape and name the file and tensor.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace tandem {

class WeightStore {
 public:
  // Opens every shard of the checkpoint in `dir`; throws tandem::Error on any problem.
  static WeightStore open(const std::filesystem::path& dir);

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor `name` with exactly `shape`; throws "<file>: tensor '<name>' ..." otherwise
  // (or "<dir>: missing tensor '<name>'").
  const TensorRef& get(const std::string& name, const std::vector<int64_t>& shape) const;
  const std::map<std::string, const TensorRef*>& tensors() const { return tensors_; }

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorRef*> tensors_;
};

}  // namespace tandem
