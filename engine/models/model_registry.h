// The one place that recognises a model: a GGUF file's general.architecture or a folder's config.json
// architectures entry picks the family (models/<family>/), which then loads config, tokenizer and weights.
// loadEngineModel (api/engine_model.h) is this registry's entry point.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "models/model_family.h"

namespace wb {

/// Every family the engine can load, in the order they are asked.
const std::vector<const ModelFamily*>& modelFamilies();
/// Reads only what names the architecture (GGUF metadata, or config.json). Errors name the file and, for an
/// architecture no family takes, every architecture that one does.
Result<ModelIdentity> identifyModel(const std::string& path);
/// The family that takes `id`, or an error naming the architecture and the supported ones.
Result<const ModelFamily*> familyOf(const ModelIdentity& id);

}  // namespace wb
