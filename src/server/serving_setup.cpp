// Model assets for the OpenAI layer.
#include "server/serving_setup.h"

#include "core/error.h"
#include "core/logging.h"

namespace tandem {
namespace {

SamplingParams default_sampling_params(const std::filesystem::path& model_dir) {
  GenerationDefaults defaults;
  (void)load_model_config(model_dir, &defaults);
  SamplingParams params;
  if (defaults.temperature) params.temperature = *defaults.temperature;
  if (defaults.top_p) params.top_p = *defaults.top_p;
  if (defaults.top_k) params.top_k = *defaults.top_k;
  if (defaults.repetition_penalty) params.repetition_penalty = *defaults.repetition_penalty;
  try {
    params.validate();
  } catch (const Error& e) {
    fail("{}/generation_config.json: {}", model_dir.string(), e.what());
  }
  return params;
}

}  // namespace

int effective_max_model_len(const EngineConfig& engine_config, const ModelConfig& model_config) {
  return engine_config.max_model_len > 0 ? engine_config.max_model_len
                                         : model_config.max_position_embeddings;
}

ModelAssets load_model_assets(const EngineConfig& engine_config, const ModelConfig& model_config,
                              const ModelAssetOptions& options) {
  ModelAssets assets;
  assets.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(engine_config.model_dir));
  std::optional<std::string> source = options.chat_template
                                           ? read_chat_template_arg(*options.chat_template)
                                           : assets.tokenizer->chat_template();
  if (source) {
    assets.chat = std::make_unique<ChatPromptRenderer>(
        *source, assets.tokenizer->bos_token(), assets.tokenizer->eos_token());
  } else {
    log_warning("{} has no chat template and no --chat-template was given: "
                "/v1/chat/completions will answer 400", engine_config.model_dir.string());
  }
  ServedModel& m = assets.model;
  m.names = options.served_model_names;
  if (m.names.empty()) m.names = {options.model_arg};
  m.root = options.model_arg;
  m.max_model_len = effective_max_model_len(engine_config, model_config);
  m.vocab_size = model_config.vocab_size;
  m.block_size = engine_config.block_size;
  m.eos_token_ids.assign(model_config.eos_token_ids.begin(), model_config.eos_token_ids.end());
  m.default_params = default_sampling_params(engine_config.model_dir);
  m.created = unix_time_now();
  return assets;
}

}  // namespace tandem
