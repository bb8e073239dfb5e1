// Token sampling: penalties, then temperature, then top-k / top-p / min-p truncation, then a seeded draw.
// temperature <= 0 is greedy (argmax after penalties; ties go to the lowest id).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "api/sampling.h"

namespace wb {


class Sampler {
public:
    explicit Sampler(const SamplingParams& params);
    /// Picks the next token from `logits` (modified in place). `history` is prompt + output so far, the first
    /// numPromptTokens of it the prompt: the repetition penalty sees both (as llama.cpp and HF do), presence and
    /// frequency penalties only the output (as OpenAI and vLLM do).
    int32_t sample(float* logits, int32_t vocabSize, std::span<const int32_t> history, size_t numPromptTokens = 0);
    const SamplingParams& params() const { return m_params; }

private:
    SamplingParams m_params;
    std::mt19937_64 m_rng;
    std::vector<std::pair<float, int32_t>> m_scratch;
};

}  // namespace wb
