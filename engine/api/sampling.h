// How a request's tokens are drawn (runtime/sampler.h applies them): penalties, then temperature, then top-k /
// top-p / min-p truncation, then a seeded draw; temperature <= 0 is greedy.
#pragma once

#include <cstdint>

namespace wb {

struct SamplingParams {
    float temperature = 0.0f;
    int topK = 0;            // 0: off
    float topP = 1.0f;       // 1: off
    float minP = 0.0f;       // 0: off
    float repetitionPenalty = 1.0f;  // HF/llama.cpp style: divide positive logits, multiply negative ones
    float presencePenalty = 0.0f;    // OpenAI style: minus once per generated token present
    float frequencyPenalty = 0.0f;   // OpenAI style: minus count (in the generated tokens) * penalty
    int penaltyLastN = 64;   // window over prompt + output for the repetition penalty; -1: all
    uint64_t seed = 0xC0FFEE;
};

}  // namespace wb
