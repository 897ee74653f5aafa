// Loading what the OpenAI layer needs about a model besides the engine: the tokenizer, the chat
// template (the tokenizer's, or --chat-template) and the served model's names, limits and
// generation_config.json sampling defaults. Shared by `tandem serve` and the server tests so
// both assemble the server the same way.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine_config.h"
#include "model/model_config.h"
#include "server/chat_prompt.h"
#include "server/serving_context.h"
#include "tokenizer/tokenizer.h"

namespace tandem {

struct ModelAssets {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatPromptRenderer> chat;  // null: no template (chat requests get a 400)
  ServedModel model;
};

struct ModelAssetOptions {
  std::vector<std::string> served_model_names;  // empty: the model argument as given
  std::string model_arg;                        // the MODEL argument, as given
  std::optional<std::string> chat_template;     // --chat-template: a file or a template
};

// Throws tandem::Error naming the file for a missing/bad tokenizer or template.
ModelAssets load_model_assets(const EngineConfig& engine_config, const ModelConfig& model_config,
                              const ModelAssetOptions& options);

// The context length the engine runs with (0 in the config = the model's).
int effective_max_model_len(const EngineConfig& engine_config, const ModelConfig& model_config);

}  // namespace tandem
