// The Llama-family decoder (Llama 1/2/3, Mistral, TinyLlama, Qwen2): loads a GGUF file or a Hugging Face folder
// into one layout (Q/K rows in rotate-half order, whatever the file used), converts weights to the chosen precision,
// and runs the forward pass over a paged KV cache on one device, or tensor-parallel over N devices (one worker
// thread each; column-parallel QKV and gate/up, row-parallel O and down, an all-reduce after each).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/weight_matrix.h"
#include "backend/device.h"
#include "core/result.h"
#include "core/thread_pool.h"
#include "api/model_types.h"
#include "models/decoder/model_config.h"
#include "runtime/kv_block_pool.h"
#include "api/tokenizer.h"

namespace wb {

class WorkerGroup;

/// The dtype matrices are converted to at load (I8: int8 with per-row scales); nullopt for Native (the file's).
std::optional<DType> precisionDType(Precision p);



/// What `inspect` reports without converting anything.
struct ModelSummary {
    std::string path;
    std::string format;  // "gguf" or "hf-safetensors"
    ModelConfig config;
    int64_t numParameters = 0;
    std::map<std::string, int64_t> tensorCountByDtype;
    int64_t fileWeightBytes = 0;
    /// Bytes of weights at each precision (matrices converted, norms and biases kept f32).
    std::map<std::string, int64_t> weightBytesByPrecision;
    /// KV cache bytes per token of context (f32 keys and values, all layers).
    int64_t kvBytesPerToken = 0;
    std::string tokenizerKind;
};

/// Reads only headers and metadata: cheap, for `inspect` and memory plans.
Result<ModelSummary> summarizeModel(const std::string& path);

/// The KV cache of one sequence on its own: a private block pool whose blocks all belong to it.
class KvCache {
public:
    /// dtype: F32, or F16 (the FP16 KV cache; CPU devices only).
    KvCache(const ModelConfig& config, int64_t capacityTokens, int64_t blockSize = 16, DType dtype = DType::F32);
    int64_t capacity() const { return m_capacity; }
    KvBlockPool& pool() { return m_pool; }
    const KvBlockPool& pool() const { return m_pool; }
    const BlockTable& table() const { return m_table; }

private:
    int64_t m_capacity;
    KvBlockPool m_pool;
    BlockTable m_table;
};

enum class LogitsMode { Last, All };

class SafetensorsSet;

/// Names of one layer's tensors in a checkpoint layout: (layer, role) -> name, role one of attn_norm, ffn_norm,
/// post_attn_norm, post_ffn_norm, q, k, v, o, gate, up, gate_up, down, q_bias, k_bias, v_bias.
struct TensorNames {
    std::function<std::string(int64_t, const char*)> layer;
    std::string embedding, outputNorm, output;
};

/// Another family's text model run by this decoder on the device path (GLM-4's: models/glm/glm_decoder.h): the
/// family reads its own config into these terms, with its switches, and names its tensors, so the decoder knows
/// no family but the Llama layouts it reads by itself.
struct DecoderLayout {
    ModelConfig config;
    std::function<TensorNames(const SafetensorsSet&)> names;
};

/// One sequence's share of a batched forward step.
struct BatchSequence {
    std::span<const int32_t> tokens;
    int64_t startPos = 0;               // position of tokens[0]
    const BlockTable* blocks = nullptr;  // must already cover startPos + tokens.size() positions
    bool wantLogits = true;              // logits of this entry's last token
    /// Models with multimodal rotary (GLM-4.1V): the tokens' rotary positions, 3 rows (temporal, height, width)
    /// of tokens.size(); empty: startPos + i + ropeOffset on every axis. Cache slots stay startPos + i.
    std::span<const int64_t> ropePositions{};
    int64_t ropeOffset = 0;
    /// Rows of dim floats that replace the embeddings of the image tokens among `tokens`, in order.
    std::span<const float> imageFeatures{};
};

class LlamaModel {
public:
    /// `path` is a .gguf file or a folder with config.json and *.safetensors.
    /// With a layout, `path` is a folder of another family whose text model this decoder runs (see DecoderLayout).
    static Result<std::unique_ptr<LlamaModel>> load(const std::string& path, const LoadOptions& options = {},
                                                    const DecoderLayout* layout = nullptr);
    ~LlamaModel();

    const ModelConfig& config() const { return m_config; }
    const Tokenizer& tokenizer() const { return *m_tokenizer; }
    Precision precision() const { return m_precision; }
    const std::string& path() const { return m_path; }
    /// The CPU thread pool of rank 0 (a small host pool when the model runs on GPUs).
    ThreadPool& threadPool();
    /// Bytes of weights of the whole model (converted or mapped), whatever the split.
    int64_t weightBytes() const { return m_weightBytes; }
    int parallelDegree() const { return int(m_shards.size()); }
    DeviceKind deviceKind() const { return m_deviceKind; }
    /// Name of each rank's device.
    std::vector<std::string> deviceNames() const;
    /// One line for stats: "cpu (2 threads, avx2)", "2 x cpu (1 threads, avx2), tensor parallel".
    std::string deviceSummary() const;
    /// Bytes of weights each rank holds on its device.
    std::vector<int64_t> deviceWeightBytes() const;
    /// Each rank's KV cache bytes per token of context (its share of the KV heads, all layers, f32 keys and values).
    std::vector<int64_t> deviceKvBytesPerToken() const;
    /// Each rank's device memory now (total, free).
    std::vector<DeviceMemory> deviceMemory() const;
    /// Whether every rank runs on a GPU (their memory is their own, not the host's).
    bool onGpus() const;
    /// Each rank's device ordinal (the CUDA device number; -1 for the CPU).
    std::vector<int> deviceOrdinals() const;
    /// Non-empty when the model cannot run another step: a device faulted (Device::fault), or the tensor-parallel
    /// communicators could not be re-created after a failed step. Only a reload (destroying the model and, on
    /// GPUs, resetting the devices) brings it back; every forward fails with this message until then.
    std::string needsReload() const;
    /// How many times a failed step's aborted communicators were re-created (tests, stats).
    int communicatorRecoveries() const { return m_communicatorRecoveries; }
    /// Allocates, on every rank, the device workspace and step scratch of the largest step the caller plans (up to
    /// maxTokens tokens of up to maxSeqs sequences, contexts up to maxContext in blocks of blockSize), so that no
    /// step allocates while other ranks' collectives run and the KV cache is sized from what is left. A larger
    /// step afterwards fails with an error rather than allocating.
    Result<void> reserveStepMemory(int64_t maxTokens, int64_t maxSeqs, int64_t maxContext, int64_t blockSize);
    /// Each rank's reserved workspace bytes (0 before reserveStepMemory, and on the CPU).
    std::vector<int64_t> deviceWorkspaceBytes() const;
    /// Whether forwardBatch reads keys and values from the pool's host storage. When false, a pool made with
    /// KvStorage::External is enough: the model keeps each rank's share on its device, attached to the pool.
    bool kvOnHost() const;

    /// Runs `tokens` at positions startPos.. and appends their keys/values to `cache`. Writes the logits of
    /// the last token (vocabSize floats) or of every token (tokens.size() * vocabSize) to `logits`.
    /// Not thread-safe: one forward at a time per model.
    Result<void> forward(std::span<const int32_t> tokens, int64_t startPos, KvCache& cache, float* logits,
                         LogitsMode mode = LogitsMode::Last);

    /// One step over several sequences at once (mixed prefill chunks and decodes): the tokens of all entries
    /// go through each matmul together; attention reads each sequence's own blocks in `pool`. Writes one row
    /// of vocabSize logits per entry with wantLogits, in entry order.
    Result<void> forwardBatch(std::span<const BatchSequence> batch, KvBlockPool& pool, float* logits);

private:
    struct Shard;  // one rank: its device, its shard of the weights, scratch (llama_model.cpp)
    struct Step;   // one forward step's flattened batch, shared by the ranks
    struct ShardedKv;
    LlamaModel() = default;
    Result<void> forwardImpl(std::span<const BatchSequence> batch, KvBlockPool& pool, float* logits, bool allLogits);
    Result<ShardedKv*> shardedKv(KvBlockPool& pool);
    Result<void> runShard(Shard& shard, const Step& step);
    Result<void> ensureScratch(Shard& shard, int64_t numTokens, int64_t numOut, int64_t tableEntries);
    /// The recovery contract's step 3 (parallel/communicator.h), after a failed step once every rank has left it.
    void recoverAfterFailedStep();
    /// One all-reduce on every rank (at load, and after re-creating the communicators).
    Result<void> checkCommunicators();

    std::string m_path;
    ModelConfig m_config;
    Precision m_precision = Precision::Native;
    DeviceKind m_deviceKind = DeviceKind::Cpu;
    std::unique_ptr<Tokenizer> m_tokenizer;
    std::shared_ptr<void> m_source;  // keeps mapped files alive
    int64_t m_weightBytes = 0;
    std::vector<std::unique_ptr<Shard>> m_shards;
    std::unique_ptr<ThreadPool> m_hostPool;  // only when no rank is a CPU device
    std::unique_ptr<WorkerGroup> m_workers;  // null for one CPU device: it runs on the caller's thread
    std::string m_needsReload;               // set by recoverAfterFailedStep when re-creating failed
    int m_communicatorRecoveries = 0;
};

}  // namespace wb
