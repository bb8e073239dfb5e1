// The public vocabulary of models: where a model runs, at which precision, and the shape of its text decoder as
// the scheduler, the stats and the front ends see it. Value types only; the families fill them in.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb {

enum class DeviceKind { Cpu, Cuda };
const char* deviceKindName(DeviceKind kind);
Result<DeviceKind> parseDeviceKind(const std::string& s);

enum class Precision { Native, F32, F16, BF16, Int8 };
std::string precisionName(Precision p);
Result<Precision> parsePrecision(const std::string& s);

/// What the KV cache stores. F16 halves its memory (keys and values rounded to FP16 as written; attention in f32);
/// Auto takes F16 when the context is long (maxModelLen >= kLongContextTokens: GLM-4.1V's 65,536, the phone
/// agent's 25,480) and the model runs on the CPU, else F32. The CUDA kernels keep F32 (F16 there is refused).
enum class KvCacheType { Auto, F32, F16 };
constexpr int64_t kLongContextTokens = 16384;
/// "auto", "f32", "f16".
const char* kvCacheTypeName(KvCacheType t);
Result<KvCacheType> parseKvCacheType(const std::string& s);
/// What a request for `t` becomes for a cache of `contextTokens` tokens on the CPU or on GPUs: Auto's rule above,
/// in one place for the engine, DirectModel and the GUI's memory plan (F32 or F16, never Auto).
KvCacheType resolveKvCacheType(KvCacheType t, int64_t contextTokens, bool onGpus);

struct LoadOptions {
    Precision precision = Precision::Native;
    int numThreads = 0;  // 0: one per core
    /// Copy weights out of the file mapping into huge-page memory (faster decoding, costs a copy at load and the
    /// page cache's sharing). Off: weights stay memory-mapped where their dtype allows.
    bool hugePages = true;
    /// Where the forward pass runs. CUDA needs the CUDA module (libwb_cuda.so) and a driver.
    DeviceKind device = DeviceKind::Cpu;
    /// Tensor-parallel degree: ranks on as many devices (CPU: in-process devices splitting numThreads). It must
    /// divide the attention heads, and the KV heads must be a multiple or a divisor of it.
    int parallelDegree = 1;
    /// GLM-4.1V as llama.cpp's GGUF pair: the mmproj file (vision tower) of a `glm4` text GGUF. Empty: the one
    /// mmproj*.gguf with the glm4v projector beside the text file, if there is exactly one (text only when none).
    std::string mmprojPath;
};

struct RopeScaling {
    enum class Type { None, Linear, Llama3 };
    Type type = Type::None;
    float factor = 1.0f;
    float lowFreqFactor = 1.0f;
    float highFreqFactor = 4.0f;
    int originalMaxPositions = 8192;
};

struct GenerationDefaults {
    float temperature = -1.0f;  // < 0: not given
    float topP = -1.0f;
    int topK = -1;
    float repetitionPenalty = -1.0f;
    std::vector<int32_t> eosTokenIds;
};

struct ModelConfig {
    std::string architecture;  // "llama", "mistral", "qwen2"
    std::string name;
    int64_t dim = 0;
    int64_t numLayers = 0;
    int64_t numHeads = 0;
    int64_t numKvHeads = 0;
    int64_t headDim = 0;
    int64_t ffnDim = 0;
    int64_t vocabSize = 0;
    int64_t maxContext = 2048;
    float normEps = 1e-5f;
    float ropeTheta = 10000.0f;
    RopeScaling ropeScaling;
    bool qkvBias = false;
    bool tiedEmbeddings = false;
    // The GLM-4 family's text model ("glm4", and GLM-4.1V's "glm4v" text part) on the device path: a norm after
    // attention and one after the MLP (before each joins the residual), a fused gate_up projection, and rotary
    // on the first rotaryDim dims of each head with pairs (2j, 2j + 1) interleaved.
    bool postNorms = false;
    bool fusedGateUp = false;
    bool interleavedRotary = false;
    int64_t rotaryDim = 0;  // 0: the whole head
    /// GLM-4.1V: frequency pairs given to the temporal, height and width rotary positions (0s: one position).
    std::array<int64_t, 3> mropeSection = {0, 0, 0};
    /// GLM-4.1V: the token whose embedding an image feature row replaces (-1: none).
    int32_t imageTokenId = -1;
    int32_t bosTokenId = -1;
    int32_t eosTokenId = -1;
    GenerationDefaults generation;

    /// Checks that the numbers are positive and consistent (heads divide, head_dim even).
    Result<void> validate(const std::string& source) const;
    /// 1/theta^(2i/d) adjusted for rope scaling; headDim/2 values.
    std::vector<float> ropeInvFreq() const;
};

}  // namespace wb
