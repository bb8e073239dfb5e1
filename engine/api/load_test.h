// Load tests: closed loop (keep `concurrency` requests in flight until `numRequests` have finished) or open loop
// (Poisson arrivals at `requestRate`, at most `concurrency` in flight), reporting the metrics of the article's
// comparison (TTFT, tokens/s, P50/P90/P99 latency) plus TPOT and inter-token latency.
#pragma once

#include <atomic>
#include <cstdint>
#include <random>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/engine.h"
#include "core/result.h"

namespace wb {

class Tokenizer;

/// An encoded image (PNG or JPEG bytes) sent with a benchmark request.
using ImageBytes = std::shared_ptr<const std::vector<uint8_t>>;

/// One benchmark request: the prompt's token ids and, for multimodal workloads, images that go before the prompt
/// (as one chat message: the images, then the prompt as text).
struct BenchRequest {
    std::vector<int32_t> promptTokens;
    std::vector<ImageBytes> images;
    int64_t maxTokens = 0;
};

/// Something that serves generation requests: this engine in process, or an OpenAI-compatible HTTP endpoint
/// (serve/http_target.h).
class BenchTarget {
public:
    virtual ~BenchTarget() = default;
    virtual std::string name() const = 0;
    /// Whether requests may carry images. runLoadTest refuses an image workload for a target that cannot send
    /// them, rather than measuring the text alone under the image workload's name.
    virtual bool acceptsImages() const { return false; }
    /// Starts one request of exactly `maxTokens` output tokens (EOS ignored where the target allows it);
    /// `onEvent` is called from any thread and ends with one Finished or Error event.
    virtual void start(const BenchRequest& request, std::function<void(const Event&)> onEvent) = 0;
};

class EngineTarget : public BenchTarget {
public:
    /// chat: every request goes as an HTTP chat request carries it (one user message: its images, then the prompt
    /// decoded to text, through the model's chat template), so it counts the same prompt tokens as a server's chat
    /// endpoint given the same workload. Otherwise a text request's ids are the prompt itself (an image request is
    /// always a chat).
    explicit EngineTarget(Engine& engine, bool chat = false) : m_engine(engine), m_chat(chat) {}
    std::string name() const override { return "workbench (in process)"; }
    bool acceptsImages() const override { return m_engine.acceptsImages(); }
    void start(const BenchRequest& request, std::function<void(const Event&)> onEvent) override;

private:
    Engine& m_engine;
    bool m_chat = false;
};

/// Prompts for workloads that go as text (chat requests, images + text), drawn so that every target counts the
/// same tokens. Random ids decoded to text do not survive the trip: ids that decode to nothing (control and unused
/// ids), byte tokens that are not UTF-8 on their own (sent in JSON as U+FFFD, three bytes that a byte-level
/// tokenizer counts as up to three tokens), and pieces that re-tokenize differently when joined. These prompts are
/// random tokens of the model's own vocabulary whose text is printable ASCII, re-tokenized until the text
/// encodes (no BOS, special tokens not parsed) back to exactly the ids: the text, whoever tokenizes it with this
/// vocabulary, is `n` tokens (plus what a chat template adds around it).
class RoundTripPrompts {
public:
    explicit RoundTripPrompts(const Tokenizer& tokenizer);
    /// Whether the vocabulary has printable-ASCII tokens to draw from (else make() falls back to random ids).
    bool usable() const { return !m_pool.empty() && !m_first.empty(); }
    /// A prompt of n tokens (n > 0) as above; deterministic for one tokenizer and rng state. Falls back to random
    /// ids from [min(100, vocab - 1), vocab) when !usable().
    std::vector<int32_t> make(std::mt19937_64& rng, int64_t n) const;
    /// Whether ids round-trip: their text is printable ASCII with no special-token text and no whitespace at
    /// either end, and encodes back to the same ids.
    bool roundTrips(const std::vector<int32_t>& ids) const;

private:
    const Tokenizer& m_tok;
    std::vector<int32_t> m_pool;   // ids whose text is printable ASCII (no trailing whitespace)
    std::vector<int32_t> m_first;  // of those, ids whose text as a prompt's first token has no leading whitespace
};

/// The images of a multimodal workload. By default every request gets images of its own: the same pictures with
/// a few pixels changed (decoded once, re-encoded as PNG per request), so no engine can answer from an image cache
/// (this one keeps recent images' features; vLLM caches by pixel content) and each request pays for its vision
/// encoding, as a phone agent's new screenshot each turn does. `distinct = false` sends the same bytes each time.
struct Image;  // media/image.h

class ImageWorkload {
public:
    ImageWorkload();
    ~ImageWorkload();
    /// `names` (files, say) name the images in errors; by default "image 1", "image 2"...
    static Result<std::unique_ptr<ImageWorkload>> create(std::vector<std::vector<uint8_t>> images, bool distinct = true,
                                                         const std::vector<std::string>& names = {});
    /// The images of these PNG/JPEG files; errors name the file (unreadable, not PNG/JPEG, corrupt).
    static Result<std::unique_ptr<ImageWorkload>> fromFiles(const std::vector<std::string>& paths, bool distinct = true);
    /// Image sets for the next n requests (made here, before any timing starts).
    Result<std::vector<std::vector<ImageBytes>>> take(int n);
    int numImages() const { return int(m_base.size()); }
    struct Info {
        std::string name;  // the file's name (fromFiles), or "image N"
        int64_t bytes = 0;
        int width = 0, height = 0;
    };
    const std::vector<Info>& info() const { return m_info; }
    bool distinct() const { return m_distinct; }

private:
    std::vector<ImageBytes> m_base;
    std::vector<Info> m_info;
    std::vector<Image> m_decoded;
    bool m_distinct = true;
    uint64_t m_next = 0;
};

struct LoadTestOptions {
    int concurrency = 1;
    int numRequests = 0;  // 0: max(4 * concurrency, 8)
    int64_t inputTokens = 128;
    int64_t outputTokens = 64;
    int vocabSize = 32000;
    uint64_t seed = 1;
    int warmupRequests = 1;
    double requestRate = 0;  // requests/s with exponential gaps (Poisson); 0: closed loop
    /// Set from any thread to stop starting requests; those in flight are still awaited (a target cannot take a
    /// request back), and the result counts only what finished.
    const std::atomic<bool>* cancel = nullptr;
    /// Called (on the thread that finished a request) after each measured request: finished, total.
    std::function<void(int, int)> onProgress;
    /// A multimodal workload: each request carries these images before its prompt. Not owned.
    ImageWorkload* images = nullptr;
    /// Set when the workload's prompts go as text (chat or image requests): the model's tokenizer, which every
    /// target of the comparison must share, to draw RoundTripPrompts from (same seed and level, same prompts on
    /// every target). Unset: random ids from [min(100, vocabSize - 1), vocabSize), for targets that take ids.
    const Tokenizer* textPrompts = nullptr;
};

struct Summary {
    double mean = 0, stddev = 0, p50 = 0, p90 = 0, p99 = 0, min = 0, max = 0;
};
Summary summarize(std::vector<double> values);

struct LoadTestResult {
    int concurrency = 0;
    int requests = 0;
    int errors = 0;
    std::string firstError;
    double wallSeconds = 0;
    Summary ttftMs;
    Summary e2eMs;
    Summary itlMs;
    Summary tpotMs;  // per request: (e2e - TTFT) / (output tokens - 1)
    double outputTokensPerSecond = 0;  // all requests' output tokens / wall time
    double requestsPerSecond = 0;
    int64_t outputTokens = 0;
    /// Prompt tokens as each target reported them in its usage (a chat's template and image tokens included),
    /// summed over the measured requests that reported a count; never the requested length standing in for one.
    int64_t promptTokens = 0;
    int promptTokensReported = 0;  // requests whose target reported a prompt count
    int64_t promptTokensMin = 0, promptTokensMax = 0;
    bool textPrompts = false;  // the prompts were RoundTripPrompts (LoadTestOptions::textPrompts, usable)
    bool cancelled = false;
    /// Per request, in finishing order: what a latency CDF is drawn from (summaries alone cannot give one).
    std::vector<double> ttftSamplesMs;
    std::vector<double> e2eSamplesMs;
};

LoadTestResult runLoadTest(BenchTarget& target, const LoadTestOptions& options);

}  // namespace wb
