// What the engine's scheduler needs of a model, so that one loop serves every family: the Llama-family
// LlamaModel (GGUF and HF, CPU or CUDA, tensor parallel) and the GLM-4 / GLM-4.1V GlmModel (text and images).
// Internal: the public surface stays api/engine.h. The scheduler (runtime/scheduler.h) drives it; each family
// (models/<family>/) implements it.
//
// A request is prepared once (template, tokenization, image decoding, preprocessing and the vision tower) into
// a PreparedPrompt the sequence keeps, so that a preempted sequence recomputes its prompt from token ids and
// cached image features without decoding its images again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "api/engine.h"
#include "backend/device.h"
#include "core/result.h"
#include "runtime/kv_block_pool.h"
#include "api/tokenizer.h"

namespace wb {

struct PreparedPrompt {
    std::vector<int32_t> ids;
    std::string stopString;  // the plain-transcript format's turn marker, when no template was used
    // Vision models only:
    std::vector<int64_t> positions;    // 3 rows (temporal, height, width) of ids.size(); empty: text positions
    int64_t ropeDelta = 0;             // rotary position of token i >= ids.size() is i + ropeDelta
    std::vector<float> imageFeatures;  // one row of the model's width per image token of ids, in order
    std::vector<uint64_t> imageHashes; // content hash of each image (prefix-cache keys), in order
    int32_t imageTokenId = -1;
    int64_t numImages() const { return int64_t(imageHashes.size()); }
};

/// One sequence's share of a step: tokens [start, start + tokens.size()) of its history.
struct ModelStep {
    std::span<const int32_t> tokens;
    int64_t start = 0;
    const BlockTable* blocks = nullptr;
    bool wantLogits = true;
    const PreparedPrompt* prompt = nullptr;
};

/// A slow prepare() (images through a vision tower: minutes for a phone screenshot on a CPU) reports its stage
/// ("vision tower 7/24 (image 1 of 2)") and stops early, with kPrepareCancelled, once `cancelled` says so. Both
/// callbacks are called on the preparing thread; either may be empty.
struct PrepareObserver {
    std::function<void(const std::string& stage)> onStage;
    std::function<bool()> cancelled;
    void stage(const std::string& s) const {
        if (onStage) onStage(s);
    }
    bool isCancelled() const { return cancelled && cancelled(); }
};
inline constexpr const char* kPrepareCancelled = "cancelled while being prepared";

class EngineModel {
public:
    virtual ~EngineModel() = default;
    /// The text model's shape in the Llama terms the scheduler and the stats use (layers, KV heads, vocab,
    /// context, name and architecture).
    virtual const ModelConfig& config() const = 0;
    virtual const Tokenizer& tokenizer() const = 0;
    virtual bool acceptsImages() const { return false; }
    /// Template, tokenization and images. Runs on the engine's loop thread. Without encodeImages the images are
    /// decoded and sized (the ids are complete) but the vision tower does not run: callable from any thread, for
    /// checking a request's length before it is queued.
    /// `observer`, when given, hears what a slow preparation is doing and is asked whether to give up.
    virtual Result<PreparedPrompt> prepare(const Request& request, bool encodeImages = true,
                                           const PrepareObserver* observer = nullptr) = 0;
    /// Whether prepare() for this request is slow enough (images through a vision tower) to run on the engine's
    /// preparation thread rather than the loop. Such a model must let prepare() run while forward() runs.
    virtual bool prepareOffLoop(const Request&) const { return false; }
    virtual Result<void> forward(std::span<const ModelStep> batch, KvBlockPool& pool, float* logits) = 0;
    virtual std::vector<int32_t> stopIds() const = 0;
    virtual int64_t weightBytes() const = 0;
    virtual std::string deviceSummary() const = 0;
    /// Images run through a vision tower so far (repeats served from the feature cache not counted).
    virtual int64_t imagesEncoded() const { return 0; }
    virtual int64_t imagesDecoded() const { return 0; }
    /// One entry per rank when the model runs on devices of its own (tensor parallel, GPUs); empty: the host.
    struct DeviceShare {
        std::string name;
        int64_t weightBytes = 0;
        int64_t workspaceBytes = 0;  // reserved for the largest step (reserveStepMemory)
        int64_t kvBytesPerToken = 0;
        DeviceMemory memory;
    };
    virtual std::vector<DeviceShare> devices() const { return {}; }
    /// Whether every rank is a GPU: the KV cache is then sized from each GPU's free memory, not the host's.
    virtual bool onGpus() const { return false; }
    /// False when the model keeps keys and values on its devices (the pool only hands out block ids).
    virtual bool kvOnHost() const { return true; }
    /// Non-empty when the model cannot run another step (a device faulted; LlamaModel::needsReload): the engine
    /// goes to EngineState::Faulted with this reason and offers a reload.
    virtual std::string needsReload() const { return {}; }
    /// The backend ordinals of the model's devices (CUDA device numbers; empty or -1 for the CPU): what a reload
    /// resets once the model is gone.
    virtual std::vector<int> deviceOrdinals() const { return {}; }
    /// Reserves on the model's devices the memory of the largest step the scheduler will run (workspace and
    /// scratch), before the KV cache is sized from what is left (LlamaModel::reserveStepMemory).
    virtual Result<void> reserveStepMemory(int64_t /*maxTokens*/, int64_t /*maxSeqs*/, int64_t /*maxContext*/,
                                           int64_t /*blockSize*/) {
        return {};
    }
};

/// LlamaModel for GGUF files and Llama-family folders; GlmModel for GLM-4 / GLM-4.1V folders.
/// maxImagePixels > 0 overrides the checkpoint's preprocessor max_pixels.
Result<std::unique_ptr<EngineModel>> loadEngineModel(const std::string& path, const LoadOptions& options,
                                                     int64_t maxImagePixels = 0);

}  // namespace wb
