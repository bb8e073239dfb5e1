// One sequence's generation loop on a LlamaModel: prefill the prompt, then sample token by token, streaming
// UTF-8-complete text and stopping on EOS/stop tokens, stop strings or the token limit.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"
#include "api/direct_model.h"
#include "models/decoder/llama_model.h"
#include "runtime/sampler.h"

namespace wb {



/// Generates from prompt ids. onText receives each UTF-8-complete delta (never half a character).
Result<GenerateResult> generate(LlamaModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                                const std::function<void(const std::string&)>& onText = {});


/// The ids that end a generation: the tokenizer's end-of-turn tokens, its EOS and generation_config.json's.
std::vector<int32_t> stopTokenIds(const LlamaModel& model);
/// The same from a tokenizer and the checkpoint's eos ids (generation_config.json).
std::vector<int32_t> stopTokenIds(const Tokenizer& tok, const std::vector<int32_t>& eosIds);

}  // namespace wb
