// What a GLM-4 / GLM-4.1V checkpoint will cost before any weight is read: parameter counts of the text model and
// the vision tower, weight bytes at each load precision, KV cache bytes per token, and one GPU's share under
// tensor parallelism. Computed from GlmConfig alone (config.json), never from the safetensors files.
//
// The bytes follow how GlmModel::load stores a checkpoint on the CPU: every matrix (embeddings, lm_head,
// projections, the Conv3d/Conv2d weights flattened to [out, in·k·k]) at the load precision, int8 with one f32
// scale per output row beside the data (the vision tower's matrices stay BF16 at int8); every vector (norms, biases, the vision position embedding) as f32
// whatever the file holds. The KV cache is the engine's KvBlockPool: f32 keys and values of every layer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/result.h"
#include "models/glm/glm_config.h"

namespace wb {

/// The tensors one device holds, in the three kinds the loader stores differently.
struct GlmWeightCounts {
    int64_t matrixElements = 0;
    int64_t matrixRows = 0;      // output rows of those matrices (int8 keeps one f32 scale per row)
    int64_t vectorElements = 0;  // norms, biases, position embeddings: always f32

    int64_t parameters() const { return matrixElements + vectorElements; }
    /// Bytes with matrices at `matrixType` (F32, F16, BF16 or I8; other types by their block size).
    int64_t bytes(DType matrixType) const;
    GlmWeightCounts& operator+=(const GlmWeightCounts& o);
};

/// One GPU's share at tensor-parallel degree `degree` (1: the whole model on one device).
struct GlmShardPlan {
    int degree = 1;
    GlmWeightCounts text, vision;  // what one rank holds (the largest share when a split is uneven)
    /// "fp32", "fp16", "bf16", "int8" (and "native" when the file dtype is known): one rank's weight bytes.
    std::map<std::string, int64_t> weightBytesByPrecision;
    int64_t kvHeadsPerRank = 0;
    int64_t kvBytesPerToken = 0;  // one rank's KV cache bytes per token of context
};

struct GlmSummary {
    GlmConfig config;
    GlmWeightCounts text, vision;  // the whole model; vision is empty for text-only GLM-4
    int64_t textParameters() const { return text.parameters(); }
    int64_t visionParameters() const { return vision.parameters(); }
    int64_t numParameters() const { return text.parameters() + vision.parameters(); }
    /// The file's dtype from config.json's torch_dtype (or dtype), when it names one.
    std::optional<DType> fileType;
    /// "fp32", "fp16", "bf16", "int8", and "native" (matrices at fileType) when fileType is known.
    std::map<std::string, int64_t> weightBytesByPrecision;
    int64_t kvBytesPerToken = 0;  // numLayers × 2 × numKvHeads × headDim × sizeof(float)
    /// Degrees 1 and 2 where the attention heads allow the split (see glmShardPlan).
    std::vector<GlmShardPlan> tensorParallel;
    /// The plan for `degree`, or null when that degree was not planned.
    const GlmShardPlan* shardPlan(int degree) const;
};

/// Text model tensors one rank holds at tensor-parallel degree `degree` (1: all of them).
GlmWeightCounts glmTextWeights(const GlmConfig& config, int degree = 1);
/// Vision tower tensors (empty when the checkpoint has none); replicated on every rank.
GlmWeightCounts glmVisionWeights(const GlmConfig& config);

/// One rank's share at tensor-parallel degree `degree`. The split assumed is the Llama engine's (the GLM model
/// itself runs on one CPU device today): query heads evenly, KV heads evenly or replicated (one per rank) when
/// fewer than the ranks; column-parallel q/k/v (with their biases) and fused gate_up halves, row-parallel o and
/// down halves of their columns (so int8 keeps every row scale); lm_head split by vocabulary rows; the embedding
/// table, the norms and the whole vision tower replicated. Errors when the heads do not split.
Result<GlmShardPlan> glmShardPlan(const GlmConfig& config, int degree, std::optional<DType> fileType = {});

/// The summary of a parsed config; `fileType` adds the "native" figure.
GlmSummary summarizeGlm(const GlmConfig& config, std::optional<DType> fileType = {});
/// config.json text (with its torch_dtype); `source` names it in errors.
Result<GlmSummary> summarizeGlmJson(const std::string& json, const std::string& source);
/// dir/config.json only: no safetensors file is opened.
Result<GlmSummary> summarizeGlmFolder(const std::string& dir);

}  // namespace wb
