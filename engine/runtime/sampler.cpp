#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace wb {

namespace {

using Candidate = std::pair<float, int32_t>;

// Larger logit first; equal logits go to the lower id so every truncation is independent of the order in which
// the partition algorithms happen to visit ties.
inline bool better(const Candidate& a, const Candidate& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// NaN would poison every comparison below; a NaN logit is treated as "impossible" instead.
inline float sanitize(float x) { return std::isnan(x) ? -std::numeric_limits<float>::infinity() : x; }

// Occurrence counts of the ids in `ids`, in `counts` as (id, count) sorted by id. Sorting a copy counts without
// a vocab-sized table, which would cost more than the usual few hundred ids.
void countIds(std::span<const int32_t> ids, std::vector<int32_t>& scratch, std::vector<std::pair<int32_t, int32_t>>& counts) {
    scratch.assign(ids.begin(), ids.end());
    std::sort(scratch.begin(), scratch.end());
    counts.clear();
    for (size_t i = 0; i < scratch.size();) {
        size_t j = i;
        while (j < scratch.size() && scratch[j] == scratch[i]) ++j;
        counts.emplace_back(scratch[i], int32_t(j - i));
        i = j;
    }
}

// Repetition penalty (llama.cpp / HF style) over the last penaltyLastN ids of prompt + output; presence and
// frequency penalties (OpenAI / vLLM semantics) over every generated id and never the prompt, so a long system
// prompt does not push the model away from the words it needs.
void applyPenalties(const SamplingParams& p, float* logits, int32_t vocabSize, std::span<const int32_t> history,
                    size_t numPromptTokens, std::vector<int32_t>& scratch) {
    std::vector<std::pair<int32_t, int32_t>> counts;
    if (p.repetitionPenalty != 1.0f && p.penaltyLastN != 0 && !history.empty()) {
        size_t n = history.size();
        if (p.penaltyLastN > 0) n = std::min(n, size_t(p.penaltyLastN));
        countIds(history.subspan(history.size() - n), scratch, counts);
        for (const auto& [id, count] : counts) {
            if (id < 0 || id >= vocabSize) continue;
            float& l = logits[id];
            l = l > 0.0f ? l / p.repetitionPenalty : l * p.repetitionPenalty;
        }
    }
    if ((p.presencePenalty != 0.0f || p.frequencyPenalty != 0.0f) && history.size() > numPromptTokens) {
        countIds(history.subspan(numPromptTokens), scratch, counts);
        for (const auto& [id, count] : counts) {
            if (id < 0 || id >= vocabSize) continue;
            logits[id] -= float(count) * p.frequencyPenalty + p.presencePenalty;
        }
    }
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : m_params(params), m_rng(params.seed) {}

int32_t Sampler::sample(float* logits, int32_t vocabSize, std::span<const int32_t> history, size_t numPromptTokens) {
    if (vocabSize <= 0) return 0;
    std::vector<int32_t> window;
    applyPenalties(m_params, logits, vocabSize, history, std::min(numPromptTokens, history.size()), window);

    if (m_params.temperature <= 0.0f) {
        // Strict > keeps the first (lowest) id among equal maxima.
        int32_t best = 0;
        float bestLogit = sanitize(logits[0]);
        for (int32_t i = 1; i < vocabSize; ++i) {
            const float l = sanitize(logits[i]);
            if (l > bestLogit) {
                bestLogit = l;
                best = i;
            }
        }
        return best;
    }

    const float invTemp = 1.0f / m_params.temperature;
    m_scratch.resize(size_t(vocabSize));
    for (int32_t i = 0; i < vocabSize; ++i) m_scratch[size_t(i)] = {sanitize(logits[i]) * invTemp, i};

    auto first = m_scratch.begin();
    size_t n = m_scratch.size();
    size_t sortedPrefix = 0;  // m_scratch[0, sortedPrefix) holds the largest logits in descending order

    if (m_params.topK > 0 && size_t(m_params.topK) < n) {
        // nth_element + sorting only k keeps this O(V + k log k) for a 150k vocabulary.
        const size_t k = size_t(m_params.topK);
        std::nth_element(first, first + std::ptrdiff_t(k - 1), first + std::ptrdiff_t(n), better);
        std::sort(first, first + std::ptrdiff_t(k), better);
        n = k;
        sortedPrefix = k;
    }

    float maxLogit = -std::numeric_limits<float>::infinity();
    if (sortedPrefix > 0) {
        maxLogit = m_scratch[0].first;
    } else {
        for (size_t i = 0; i < n; ++i) maxLogit = std::max(maxLogit, m_scratch[i].first);
    }
    if (maxLogit == -std::numeric_limits<float>::infinity()) {
        // Nothing is possible; fall back to the greedy answer rather than divide by zero.
        int32_t best = m_scratch[0].second;
        for (size_t i = 1; i < n; ++i) best = std::min(best, m_scratch[i].second);
        return best;
    }

    if (m_params.topP < 1.0f) {
        double total = 0.0;
        for (size_t i = 0; i < n; ++i) total += std::exp(double(m_scratch[i].first - maxLogit));
        const double target = double(std::max(m_params.topP, 0.0f)) * total;
        // Sort only as far as the nucleus reaches: grow the sorted prefix geometrically. Elements beyond the sorted
        // prefix are all no larger than those inside it, so each step sorts just the next slice of the tail.
        double cum = 0.0;
        size_t keep = n;
        size_t i = 0;
        size_t step = 64;
        while (i < n) {
            if (i >= sortedPrefix) {
                const size_t upto = std::min(n, sortedPrefix + step);
                std::partial_sort(first + std::ptrdiff_t(sortedPrefix), first + std::ptrdiff_t(upto),
                                  first + std::ptrdiff_t(n), better);
                sortedPrefix = upto;
                step *= 4;
            }
            cum += std::exp(double(m_scratch[i].first - maxLogit));
            ++i;
            if (cum >= target) {
                keep = i;  // at least one token survives since i >= 1 here
                break;
            }
        }
        n = keep;
    }

    if (m_params.minP > 0.0f) {
        // p_i >= minP * p_max  <=>  logit_i >= maxLogit + log(minP); the max itself always survives.
        const float threshold = maxLogit + std::log(std::min(m_params.minP, 1.0f));
        if (sortedPrefix >= n) {
            size_t keep = 1;
            while (keep < n && m_scratch[keep].first >= threshold) ++keep;
            n = keep;
        } else {
            auto mid = std::stable_partition(first, first + std::ptrdiff_t(n),
                                             [&](const Candidate& c) { return c.first >= threshold; });
            n = size_t(mid - first);
        }
    }

    double total = 0.0;
    for (size_t i = 0; i < n; ++i) total += std::exp(double(m_scratch[i].first - maxLogit));
    // 53 random bits straight from the engine: std::uniform_real_distribution is implementation-defined, and the
    // draw must be reproducible wherever the same seed is used.
    const double u = double(m_rng() >> 11) * 0x1.0p-53 * total;
    double cum = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double w = std::exp(double(m_scratch[i].first - maxLogit));
        cum += w;
        if (u < cum && w > 0.0) return m_scratch[i].second;
    }
    // Rounding left u at the very top: take the last candidate with non-zero weight.
    for (size_t i = n; i-- > 0;) {
        if (m_scratch[i].first > -std::numeric_limits<float>::infinity()) return m_scratch[i].second;
    }
    return m_scratch[0].second;
}

}  // namespace wb
