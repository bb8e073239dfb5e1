// GLM-4 (Glm4ForCausalLM) and GLM-4.1V (Glm4vForConditionalGeneration; AutoGLM-Phone-9B) on the CPU.
//
// Text blocks: x += post_self_attn_norm(attn(input_norm(x))); x += post_mlp_norm(mlp(post_attention_norm(x))),
// q/k/v biases, a fused gate_up projection, and rotary on the first rotaryDim dims of each head with pairs
// (2j, 2j+1) interleaved. In the vision-language model each token has three rotary positions (temporal, height,
// width) and pair j takes the one its mrope section names; text tokens have three equal positions.
//
// Vision tower: Conv3d patch embedding as one matmul over the processor's flattened patches, RMSNorm, learned
// position embeddings resampled to the patch grid (bicubic grid_sample, as the reference), blocks with 2-D
// rotary attention over each image, post-layernorm, a 2×2 Conv2d downsample of each merge block and the merger
// MLP into the text width. The features replace the embeddings of the image tokens, in order.
//
// The KV cache is the engine's paged KvBlockPool; a token's cache slot is its index in the sequence, which is
// not its rotary position once images are in the prompt.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/weight_matrix.h"
#include "core/dtype.h"
#include "core/result.h"
#include "core/thread_pool.h"
#include "models/glm/glm_config.h"
#include "media/glm4v_image_processor.h"
#include "runtime/kv_block_pool.h"
#include "api/tokenizer.h"

namespace wb {

struct GlmLoadOptions {
    /// Matrices converted to this type at load (F32, F16, BF16, I8 per-row int8); unset: the file's own dtype.
    std::optional<DType> weightType;
    int numThreads = 0;  // 0: one per core
    /// Tokenizer from the folder (tokenizer.json + tokenizer_config.json). Off for weight-only test folders.
    bool loadTokenizer = true;
    /// Copy the text model's matrices out of the file mapping (or the load-time conversion's buffer) into
    /// huge-page memory, as LlamaModel does (LoadOptions::hugePages): generation streams every one of them per
    /// token, and 4 KiB pages cost a TLB miss every 4 KiB of the stream. The vision tower (compute bound) and an
    /// untied embedding table (read a row at a time) stay where they are.
    bool hugePages = false;
    /// Matrices smaller than this stay where they are (a 2-KV-head projection is about 1 MB: most of a 2 MiB
    /// page wasted for few TLB misses). Tests set 0 to move the tiny models' matrices.
    int64_t hugePageMinBytes = int64_t(16) << 20;
    /// Q8_0, Q4_0 and Q4_K text matrices (not the embedding table, not the vision tower) in the interleaved layout
    /// of the CPU's AVX-512 generation kernels (interleaveBlocks): loadGlm sets it on one CPU device when the
    /// kernels have it.
    /// Applies to the copies a load makes anyway (mapped or converted matrices).
    bool interleaveBlocks = false;
};

/// One sequence's share of a batched text forward step.
struct GlmSequenceStep {
    std::span<const int32_t> tokens;
    int64_t startIndex = 0;  // cache slot of tokens[0]
    /// Rotary positions of these tokens: 3 rows (temporal, height, width) of tokens.size() each. Empty: all three
    /// are startIndex + i + positionOffset (text, and everything after the prompt's images).
    std::span<const int64_t> positions;
    int64_t positionOffset = 0;
    /// Rows of dim floats for the image tokens among `tokens`, in order (as many rows as image tokens).
    std::span<const float> imageFeatures;
    const BlockTable* blocks = nullptr;
    bool wantLogits = true;  // logits of the last token
};

class GlmModel {
public:
    /// A Hugging Face folder: config.json, *.safetensors (sharded with an index or not), tokenizer files,
    /// preprocessor_config.json for the vision model.
    static Result<std::unique_ptr<GlmModel>> load(const std::string& dir, const GlmLoadOptions& options = {});
    /// llama.cpp's GGUF pair: the text model (`glm4` architecture) and, when `mmprojPath` is not empty, the vision
    /// tower (an mmproj file with the `glm4v` projector). Config, tokenizer and chat template come from the files.
    static Result<std::unique_ptr<GlmModel>> loadGguf(const std::string& textPath, const std::string& mmprojPath,
                                                      const GlmLoadOptions& options = {});
    ~GlmModel();

    const GlmConfig& config() const { return m_config; }
    bool hasTokenizer() const { return m_tokenizer != nullptr; }
    const Tokenizer& tokenizer() const { return *m_tokenizer; }
    const Glm4vProcessorConfig& processorConfig() const { return m_processor; }
    Glm4vProcessorConfig& processorConfig() { return m_processor; }
    ThreadPool& threadPool() { return *m_pool; }
    int64_t kvDim() const { return m_config.text.numKvHeads * m_config.text.headDim; }
    /// Bytes of the weights as held for compute (matrices in their load dtype, norms and biases f32).
    int64_t weightBytes() const;
    /// The vision tower's share of weightBytes().
    int64_t visionWeightBytes() const;
    /// How many matrices are held in the interleaved layout (GlmLoadOptions::interleaveBlocks).
    int64_t interleavedMatrices() const;

    /// Vision tower on one preprocessed image: numTokens × dim features (row-major). Runs on `pool` (default: the
    /// model's own). Reads weights only: with a pool of its own it may run while forward() runs on another thread.
    /// `onLayer(done, total)` is called after each vision block; returning false stops the encoding (an error).
    Result<std::vector<float>> encodeImage(const Glm4vImageInput& image, ThreadPool* pool = nullptr,
                                           const std::function<bool(int, int)>& onLayer = {});

    /// One step over several sequences (prefill chunks and decodes mixed). Writes vocabSize logits per entry with
    /// wantLogits, in entry order, or, with allLogits, one row per token of every entry.
    Result<void> forward(std::span<const GlmSequenceStep> batch, KvBlockPool& pool, float* logits,
                         bool allLogits = false);

private:
    struct TextLayer;
    struct VisionBlock;
    GlmModel();
    /// Reads every weight through `source` (a TensorSource of glm_model.cpp: HF names over either file layout).
    Result<void> loadWeights(const void* source);
    void embed(int32_t token, float* out) const;

    GlmConfig m_config;
    Glm4vProcessorConfig m_processor;
    std::unique_ptr<Tokenizer> m_tokenizer;
    std::shared_ptr<void> m_source;
    std::unique_ptr<ThreadPool> m_pool;

    WeightMatrix m_embedding, m_output;
    std::vector<float> m_outputNorm;
    std::vector<TextLayer> m_layers;
    std::vector<float> m_invFreq;  // rotaryDim / 2
    std::vector<int> m_pairAxis;   // 0, 1, 2: which position each frequency pair uses

    // Vision tower
    WeightMatrix m_patchEmbed, m_downsample, m_mergerProj, m_mergerGate, m_mergerUp, m_mergerDown;
    std::vector<float> m_patchBias, m_postConvNorm, m_posEmbed, m_postNorm, m_downsampleBias, m_mergerNormW,
            m_mergerNormB;
    std::vector<VisionBlock> m_blocks;
    std::vector<float> m_visionInvFreq;  // vision headDim / 4
};

}  // namespace wb
