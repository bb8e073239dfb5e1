// wb-make-model: writes a random-weight Llama-family checkpoint of any shape, as one GGUF file (llama.cpp
// names and metadata) or as a Hugging Face folder (config.json + safetensors), for tests and benchmarks.
// Both layouts hold the same model for the same seed: weights are drawn in PyTorch order from a counter-based
// generator keyed by the HF tensor name, and GGUF's Q/K rows are then permuted exactly as convert_hf_to_gguf.py
// permutes them.
#ifndef WB_NO_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/weight_matrix.h"
#include "core/dtype.h"
#include "core/result.h"
#include "models/glm/glm_config.h"
#include "models/glm/glm_gguf_export.h"
#include "models/glm/glm_tiny.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/unicode_tables.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors_writer.h"

namespace fs = std::filesystem;

namespace wb {
namespace {

struct Options {
    std::string out;
    std::string format = "gguf";
    std::string dtype = "f16";
    int64_t dim = 2048;
    int64_t layers = 22;
    int64_t ffn = 5632;
    int64_t heads = 32;
    int64_t kvHeads = 4;
    int64_t vocab = 32000;
    int64_t ctx = 2048;
    double ropeTheta = 10000.0;
    double normEps = 1e-5;
    bool qkvBias = false;
    bool tied = false;
    int shards = 1;
    uint64_t seed = 0;
    std::string tokenizerFrom;
    std::string name;
};

const char* kUsage =
    "usage: wb-make-model --out PATH [--format gguf|hf] [--dtype f32|f16|bf16|q8_0] [--preset tiny|1b|7b]\n"
    "                     [--dim N] [--layers N] [--ffn N] [--heads N] [--kv-heads N] [--vocab N] [--ctx N]\n"
    "                     [--rope-theta X] [--norm-eps X] [--qkv-bias] [--tied] [--shards N] [--seed S]\n"
    "                     [--tokenizer-from GGUF_OR_TOKENIZER_MODEL] [--name NAME]\n"
    "       wb-make-model --arch glm4v|glm4 --out DIR [--preset tiny|9b] [--text-layers N] [--seed N] [--shards N]\n"
    "                     [--format hf|gguf] [--dtype f16|q8_0|q4_0|q4_k_m|bf16|f32] [--from HF_DIR]\n"
    "Writes a random-weight Llama model (Qwen2-style with --qkv-bias). gguf: PATH is the file; hf: PATH is a\n"
    "folder. Defaults are the 1b preset (TinyLlama shape); explicit flags override the preset.\n"
    "q8_0 is GGUF-only. --shards applies to hf.\n"
    "--arch writes a tiny GLM-4.1V / GLM-4 folder in the Hugging Face layout (config with pad_token_id inside the\n"
    "300-token vocabulary, safetensors, tokenizer and chat template, preprocessor config) that Transformers\n"
    "loads as it is. Its shapes are fixed (text dim 64, 2 layers, 4 heads / 2 KV heads, ffn 96; vision 2 blocks\n"
    "of width 32): with --arch the Llama size flags are refused, not ignored. Default seed 7.\n"
    "--preset 9b (--arch glm4v): GLM-4.1V-9B-Thinking's published config (text 4096 x 40 layers, ffn 13696,\n"
    "32 / 2 KV heads, vocab 151552; vision 24 x 1536), random BF16 weights streamed into ~5 GB shards with\n"
    "model.safetensors.index.json; --text-layers N keeps N decoder layers for quick runs.\n"
    "--format gguf also writes DIR/glm4[v]-DTYPE.gguf (llama.cpp's glm4 architecture) and, for glm4v,\n"
    "DIR/mmproj-DTYPE.gguf (clip, glm4v projector) from the folder; --from HF_DIR converts an existing folder.\n";

void applyPreset(Options& o, const std::string& p) {
    if (p == "tiny") {
        o.dim = 256, o.layers = 2, o.ffn = 768, o.heads = 8, o.kvHeads = 4, o.vocab = 32000, o.ctx = 512;
    } else if (p == "1b") {
        o.dim = 2048, o.layers = 22, o.ffn = 5632, o.heads = 32, o.kvHeads = 4, o.vocab = 32000, o.ctx = 2048;
    } else if (p == "7b") {
        o.dim = 4096, o.layers = 32, o.ffn = 11008, o.heads = 32, o.kvHeads = 32, o.vocab = 32000, o.ctx = 4096;
    }
}

Result<Options> parseArgs(int argc, char** argv) {
    Options o;
    // The preset goes first whatever its position, so that explicit flags always override it.
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::string(argv[i]) == "--preset") {
            const std::string p = argv[i + 1];
            if (p != "tiny" && p != "1b" && p != "7b") return makeError("unknown preset '" + p + "' (tiny, 1b, 7b)");
            applyPreset(o, p);
        }
    }
    int64_t shards = o.shards, seed = 0;
    const std::map<std::string, std::string*> texts = {{"--out", &o.out},
                                                       {"--format", &o.format},
                                                       {"--dtype", &o.dtype},
                                                       {"--name", &o.name},
                                                       {"--tokenizer-from", &o.tokenizerFrom}};
    const std::map<std::string, int64_t*> integers = {
        {"--dim", &o.dim},     {"--layers", &o.layers},    {"--ffn", &o.ffn},
        {"--heads", &o.heads}, {"--kv-heads", &o.kvHeads}, {"--vocab", &o.vocab},
        {"--ctx", &o.ctx},     {"--shards", &shards},      {"--seed", &seed}};
    const std::map<std::string, double*> reals = {{"--rope-theta", &o.ropeTheta}, {"--norm-eps", &o.normEps}};
    const std::map<std::string, bool*> switches = {{"--qkv-bias", &o.qkvBias}, {"--tied", &o.tied}};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (auto it = switches.find(a); it != switches.end()) {
            *it->second = true;
            continue;
        }
        const bool known = a == "--preset" || texts.count(a) || integers.count(a) || reals.count(a);
        if (!known) return makeError("unknown argument '" + a + "'");
        if (i + 1 >= argc) return makeError(a + " needs a value");
        const std::string v = argv[++i];
        char* end = nullptr;
        if (auto t = texts.find(a); t != texts.end()) {
            *t->second = v;
        } else if (auto n = integers.find(a); n != integers.end()) {
            *n->second = std::strtoll(v.c_str(), &end, 10);
            if (v.empty() || *end) return makeError(a + ": '" + v + "' is not an integer");
        } else if (auto r = reals.find(a); r != reals.end()) {
            *r->second = std::strtod(v.c_str(), &end);
            if (v.empty() || *end) return makeError(a + ": '" + v + "' is not a number");
        }
    }
    o.shards = int(shards);
    o.seed = uint64_t(seed);
    if (o.out.empty()) return makeError("--out is required");
    if (o.format != "gguf" && o.format != "hf") return makeError("--format must be gguf or hf");
    if (o.dtype != "f32" && o.dtype != "f16" && o.dtype != "bf16" && o.dtype != "q8_0")
        return makeError("--dtype must be f32, f16, bf16 or q8_0");
    if (o.dtype == "q8_0" && o.format != "gguf") return makeError("q8_0 exists only in GGUF (use --format gguf)");
    if (o.dim <= 0 || o.layers <= 0 || o.ffn <= 0 || o.heads <= 0 || o.kvHeads <= 0 || o.vocab <= 0 || o.ctx <= 0)
        return makeError("sizes must be positive");
    if (o.dim % o.heads != 0) return makeError("--dim must be a multiple of --heads");
    if (o.heads % o.kvHeads != 0) return makeError("--heads must be a multiple of --kv-heads");
    if ((o.dim / o.heads) % 2 != 0) return makeError("head dimension (dim / heads) must be even for rotary");
    if (o.shards < 1) return makeError("--shards must be >= 1");
    if (o.name.empty())
        o.name =
            "random-llama-" + std::to_string(o.dim) + "x" + std::to_string(o.layers) + "-seed" + std::to_string(o.seed);
    return o;
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic weights. Value i of a tensor depends only on (seed, HF name, i), never on threads or chunking, so
// any slice can be generated independently and both layouts agree.

inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t tensorKey(uint64_t seed, const std::string& hfName) {
    uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a
    for (unsigned char c : hfName) h = (h ^ c) * 0x100000001B3ull;
    return mix64(h ^ mix64(seed + 0x9E3779B97F4A7C15ull));
}

/// Values [first, first + n) of a N(0, stddev^2) stream keyed by `key` (Box-Muller over counter pairs).
void normalValues(uint64_t key, int64_t first, int64_t n, float stddev, float* dst) {
    constexpr double kTwoPi = 6.283185307179586476925286766559;
    for (int64_t i = first; i < first + n;) {
        const uint64_t pair = uint64_t(i) >> 1;
        const double u1 = double((mix64(key + 2 * pair * 0x9E3779B97F4A7C15ull) >> 11) + 1) * 0x1.0p-53;  // (0,1]
        const double u2 = double(mix64(key + (2 * pair + 1) * 0x9E3779B97F4A7C15ull) >> 11) * 0x1.0p-53;
        const double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
        const double z[2] = {r * std::cos(kTwoPi * u2), r * std::sin(kTwoPi * u2)};
        for (int k = int(i & 1); k < 2 && i < first + n; ++k, ++i) dst[i - first] = float(z[k]);
    }
}

enum class Init { Normal, Ones };

struct TensorSpec {
    std::string hfName;
    std::string ggufName;
    std::vector<int64_t> shape;  // PyTorch order
    Init init = Init::Normal;
    int64_t permuteHeads = 0;  // > 0: Q/K weight or bias, permuted into GGUF's rotary order over this many heads
};

std::vector<TensorSpec> llamaTensors(const Options& o) {
    const int64_t hd = o.dim / o.heads;
    const int64_t kvDim = hd * o.kvHeads;
    std::vector<TensorSpec> t;
    t.push_back({"model.embed_tokens.weight", "token_embd.weight", {o.vocab, o.dim}});
    for (int64_t l = 0; l < o.layers; ++l) {
        const std::string hf = "model.layers." + std::to_string(l) + ".";
        const std::string gg = "blk." + std::to_string(l) + ".";
        t.push_back({hf + "input_layernorm.weight", gg + "attn_norm.weight", {o.dim}, Init::Ones});
        t.push_back({hf + "self_attn.q_proj.weight", gg + "attn_q.weight", {o.dim, o.dim}, Init::Normal, o.heads});
        t.push_back({hf + "self_attn.k_proj.weight", gg + "attn_k.weight", {kvDim, o.dim}, Init::Normal, o.kvHeads});
        t.push_back({hf + "self_attn.v_proj.weight", gg + "attn_v.weight", {kvDim, o.dim}});
        if (o.qkvBias) {
            t.push_back({hf + "self_attn.q_proj.bias", gg + "attn_q.bias", {o.dim}, Init::Normal, o.heads});
            t.push_back({hf + "self_attn.k_proj.bias", gg + "attn_k.bias", {kvDim}, Init::Normal, o.kvHeads});
            t.push_back({hf + "self_attn.v_proj.bias", gg + "attn_v.bias", {kvDim}});
        }
        t.push_back({hf + "self_attn.o_proj.weight", gg + "attn_output.weight", {o.dim, o.dim}});
        t.push_back({hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", {o.dim}, Init::Ones});
        t.push_back({hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", {o.ffn, o.dim}});
        t.push_back({hf + "mlp.up_proj.weight", gg + "ffn_up.weight", {o.ffn, o.dim}});
        t.push_back({hf + "mlp.down_proj.weight", gg + "ffn_down.weight", {o.dim, o.ffn}});
    }
    t.push_back({"model.norm.weight", "output_norm.weight", {o.dim}, Init::Ones});
    // Tied: HF omits lm_head and GGUF omits output.weight; both loaders then reuse the embedding.
    if (!o.tied) t.push_back({"lm_head.weight", "output.weight", {o.vocab, o.dim}});
    return t;
}

/// Source row of each GGUF row: w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2) puts HF row h*hd + t*hd/2 + j
/// at GGUF row h*hd + 2*j + t, i.e. the two rotate-half halves of each head become interleaved pairs.
std::vector<int64_t> ggufRotaryPermutation(int64_t rows, int64_t heads) {
    const int64_t hd = rows / heads, half = hd / 2;
    std::vector<int64_t> src(size_t(rows), 0);
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < half; ++j)
            for (int64_t t = 0; t < 2; ++t) src[size_t(h * hd + 2 * j + t)] = h * hd + t * half + j;
    return src;
}

DType modelDtype(const Options& o) {
    if (o.dtype == "f32") return DType::F32;
    if (o.dtype == "bf16") return DType::BF16;
    if (o.dtype == "q8_0") return DType::Q8_0;
    return DType::F16;
}

/// Rounds through F16/BF16 in place. GGUF keeps 1-D tensors in F32 where HF stores them in the model dtype;
/// rounding first makes the two files hold bit-identical values.
void roundThrough(DType dtype, float* v, int64_t n) {
    if (dtype == DType::F16)
        for (int64_t i = 0; i < n; ++i) v[i] = fp16ToFp32(fp32ToFp16(v[i]));
    else if (dtype == DType::BF16)
        for (int64_t i = 0; i < n; ++i) v[i] = bf16ToFp32(fp32ToBf16(v[i]));
}

/// A producer writing `spec` in `storeType`, rows reordered by `rowSource` when given. Rows are split over threads.
TensorProducer makeProducer(const Options& o, const TensorSpec& spec, DType storeType, DType roundType,
                            std::vector<int64_t> rowSource) {
    const uint64_t key = tensorKey(o.seed, spec.hfName);
    // Rows are the first dimension; a conv kernel's other dimensions flatten into its row.
    int64_t cols = spec.shape.back();
    for (size_t d = 1; d + 1 < spec.shape.size(); ++d) cols *= spec.shape[d];
    const int64_t rows = spec.shape.size() == 1 ? 1 : spec.shape[0];
    const Init init = spec.init;
    // A 1-D tensor with a permutation (Q/K bias) permutes single values: treat it as `n` rows of one value.
    const bool permuteScalars = spec.shape.size() == 1 && !rowSource.empty();
    return [=](uint8_t* dst, size_t numBytes) -> Result<void> {
        const int64_t effRows = permuteScalars ? cols : rows;
        const int64_t effCols = permuteScalars ? 1 : cols;
        const int64_t rowBytes = dtypeRowBytes(storeType, effCols);
        if (!permuteScalars && size_t(rows * rowBytes) != numBytes)
            return makeError("internal: size mismatch for " + spec.hfName);
        auto work = [&](int64_t r0, int64_t r1) {
            std::vector<float> row(static_cast<size_t>(effCols));
            if (permuteScalars) {
                // Values must be encoded together (F32 here), so do the whole vector at once.
                std::vector<float> all(static_cast<size_t>(cols));
                normalValues(key, 0, cols, 0.02f, all.data());
                roundThrough(roundType, all.data(), cols);
                std::vector<float> out(static_cast<size_t>(cols));
                for (int64_t i = 0; i < cols; ++i) out[size_t(i)] = all[size_t(rowSource[size_t(i)])];
                quantizeRow(storeType, out.data(), dst, cols);
                return;
            }
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t src = rowSource.empty() ? r : rowSource[size_t(r)];
                if (init == Init::Ones)
                    std::fill(row.begin(), row.end(), 1.0f);
                else
                    normalValues(key, src * cols, cols, 0.02f, row.data());
                roundThrough(roundType, row.data(), cols);
                quantizeRow(storeType, row.data(), dst + r * rowBytes, cols);
            }
        };
        if (permuteScalars || rows < 64) {
            work(0, effRows);
            return {};
        }
        const int64_t nThreads = std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), 16));
        std::vector<std::thread> pool;
        for (int64_t t = 0; t < nThreads; ++t) {
            const int64_t r0 = rows * t / nThreads, r1 = rows * (t + 1) / nThreads;
            pool.emplace_back(work, r0, r1);
        }
        for (auto& th : pool) th.join();
        return {};
    };
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer sources.

std::string findFixture(const std::string& rel) {
    std::vector<std::string> roots;
    if (const char* env = std::getenv("WB_FIXTURES_DIR"); env && *env) roots.push_back(env);
    roots.push_back("../shared/fixtures");
    roots.push_back("/work/shared/fixtures");
    for (const auto& r : roots)
        if (fs::exists(r + "/" + rel)) return r + "/" + rel;
    return {};
}

bool endsWith(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct SpecialIds {
    int64_t bos = 1, eos = 2;
};

/// Copies tokenizer.* metadata from a GGUF whose vocabulary has `vocab` tokens. False (with a note) otherwise.
bool copyGgufTokenizer(const std::string& path, int64_t vocab, GgufWriter& w, SpecialIds& ids) {
    auto g = GgufFile::open(path);
    if (!g) {
        std::fprintf(stderr, "note: no tokenizer written: %s\n", g.error().message.c_str());
        return false;
    }
    const auto* tokens = (*g)->getStringArray("tokenizer.ggml.tokens");
    if (!tokens || int64_t(tokens->size()) != vocab) {
        std::fprintf(stderr, "note: no tokenizer written: %s has %zu tokens, the model %lld\n", path.c_str(),
                     tokens ? tokens->size() : size_t(0), (long long)vocab);
        return false;
    }
    for (const auto& [k, v] : (*g)->metadata())
        if (k.rfind("tokenizer.", 0) == 0) w.set(k, v);
    if (auto b = (*g)->getInt("tokenizer.ggml.bos_token_id")) ids.bos = *b;
    if (auto e = (*g)->getInt("tokenizer.ggml.eos_token_id")) ids.eos = *e;
    return true;
}

/// Builds tokenizer.ggml.* from a SentencePiece model the way convert_hf_to_gguf.py does for Llama.
bool sentencepieceToGguf(const std::string& path, int64_t vocab, GgufWriter& w, SpecialIds& ids) {
#ifdef WB_NO_SENTENCEPIECE
    (void)vocab, (void)w, (void)ids;
    std::fprintf(stderr, "note: no tokenizer written: %s needs libsentencepiece (a WB_MINIMAL build)\n", path.c_str());
    return false;
#else
    sentencepiece::SentencePieceProcessor sp;
    if (const auto st = sp.Load(path); !st.ok()) {
        std::fprintf(stderr, "note: no tokenizer written: %s: %s\n", path.c_str(), st.ToString().c_str());
        return false;
    }
    if (sp.GetPieceSize() != vocab) {
        std::fprintf(stderr, "note: no tokenizer written: %s has %d pieces, the model %lld\n", path.c_str(),
                     sp.GetPieceSize(), (long long)vocab);
        return false;
    }
    std::vector<std::string> tokens;
    std::vector<double> scores, types;
    for (int i = 0; i < sp.GetPieceSize(); ++i) {
        tokens.push_back(sp.IdToPiece(i));
        scores.push_back(sp.GetScore(i));
        // llama.cpp token types: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte.
        types.push_back(sp.IsUnknown(i) ? 2 : sp.IsControl(i) ? 3 : sp.IsUnused(i) ? 5 : sp.IsByte(i) ? 6 : 1);
    }
    w.setString("tokenizer.ggml.model", "llama");
    w.setStringArray("tokenizer.ggml.tokens", std::move(tokens));
    w.setNumberArray("tokenizer.ggml.scores", GgufType::F32, std::move(scores));
    w.setNumberArray("tokenizer.ggml.token_type", GgufType::I32, std::move(types));
    if (sp.bos_id() >= 0) w.setU32("tokenizer.ggml.bos_token_id", uint32_t(ids.bos = sp.bos_id()));
    if (sp.eos_id() >= 0) w.setU32("tokenizer.ggml.eos_token_id", uint32_t(ids.eos = sp.eos_id()));
    if (sp.unk_id() >= 0) w.setU32("tokenizer.ggml.unknown_token_id", uint32_t(sp.unk_id()));
    w.setBool("tokenizer.ggml.add_bos_token", true);
    w.setBool("tokenizer.ggml.add_eos_token", false);
    return true;
#endif
}

Result<void> writeJson(const std::string& path, const nlohmann::ordered_json& j) {
    std::ofstream f(path, std::ios::binary);
    f << j.dump(2) << "\n";
    if (!f.good()) return makeError("cannot write " + path);
    return {};
}

/// tokenizer.model + tokenizer_config.json + special_tokens_map.json for a SentencePiece Llama tokenizer.
bool copyHfTokenizer(const std::string& spModel, const Options& o, SpecialIds& ids) {
#ifdef WB_NO_SENTENCEPIECE
    (void)o, (void)ids;
    std::fprintf(stderr, "note: no tokenizer written: %s needs libsentencepiece (a WB_MINIMAL build)\n",
                 spModel.c_str());
    return false;
#else
    sentencepiece::SentencePieceProcessor sp;
    if (const auto st = sp.Load(spModel); !st.ok()) {
        std::fprintf(stderr, "note: no tokenizer written: %s: %s\n", spModel.c_str(), st.ToString().c_str());
        return false;
    }
    if (sp.GetPieceSize() != o.vocab) {
        std::fprintf(stderr, "note: no tokenizer written: %s has %d pieces, the model %lld\n", spModel.c_str(),
                     sp.GetPieceSize(), (long long)o.vocab);
        return false;
    }
    std::error_code ec;
    fs::copy_file(spModel, o.out + "/tokenizer.model", fs::copy_options::overwrite_existing, ec);
    if (ec) {
        std::fprintf(stderr, "note: no tokenizer written: %s\n", ec.message().c_str());
        return false;
    }
    // The fixture is read-only; the copy must stay writable so that a rerun can overwrite it.
    fs::permissions(o.out + "/tokenizer.model", fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::add,
                    ec);
    const std::string bos = sp.bos_id() >= 0 ? sp.IdToPiece(sp.bos_id()) : "<s>";
    const std::string eos = sp.eos_id() >= 0 ? sp.IdToPiece(sp.eos_id()) : "</s>";
    const std::string unk = sp.unk_id() >= 0 ? sp.IdToPiece(sp.unk_id()) : "<unk>";
    if (sp.bos_id() >= 0) ids.bos = sp.bos_id();
    if (sp.eos_id() >= 0) ids.eos = sp.eos_id();
    nlohmann::ordered_json cfg = {{"add_bos_token", true},
                                  {"add_eos_token", false},
                                  {"bos_token", bos},
                                  {"clean_up_tokenization_spaces", false},
                                  {"eos_token", eos},
                                  {"legacy", false},
                                  {"model_max_length", o.ctx},
                                  {"pad_token", nullptr},
                                  {"padding_side", "right"},
                                  {"sp_model_kwargs", nlohmann::ordered_json::object()},
                                  {"tokenizer_class", "LlamaTokenizer"},
                                  {"unk_token", unk}};
    nlohmann::ordered_json special = {{"bos_token", bos}, {"eos_token", eos}, {"unk_token", unk}};
    if (!writeJson(o.out + "/tokenizer_config.json", cfg) || !writeJson(o.out + "/special_tokens_map.json", special))
        return false;
    return true;
#endif
}

// ---------------------------------------------------------------------------------------------------------------

Result<void> writeGguf(const Options& o, const std::vector<TensorSpec>& specs) {
    const DType dt = modelDtype(o);
    GgufWriter w;
    w.setString("general.architecture", "llama");
    w.setString("general.name", o.name);
    // llama_ftype: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q8_0 7, MOSTLY_BF16 32.
    const uint32_t fileType = dt == DType::F32 ? 0 : dt == DType::F16 ? 1 : dt == DType::Q8_0 ? 7 : 32;
    w.setU32("general.file_type", fileType);
    w.setU32("general.quantization_version", 2);
    w.setU32("llama.vocab_size", uint32_t(o.vocab));
    w.setU32("llama.context_length", uint32_t(o.ctx));
    w.setU32("llama.embedding_length", uint32_t(o.dim));
    w.setU32("llama.block_count", uint32_t(o.layers));
    w.setU32("llama.feed_forward_length", uint32_t(o.ffn));
    w.setU32("llama.attention.head_count", uint32_t(o.heads));
    w.setU32("llama.attention.head_count_kv", uint32_t(o.kvHeads));
    w.setF32("llama.attention.layer_norm_rms_epsilon", float(o.normEps));
    w.setF32("llama.rope.freq_base", float(o.ropeTheta));
    w.setU32("llama.rope.dimension_count", uint32_t(o.dim / o.heads));

    SpecialIds ids;
    std::string tok = o.tokenizerFrom;
    if (tok.empty()) tok = findFixture("tokenizers/goldens/ggml-vocab-llama-spm.gguf");
    if (tok.empty())
        std::fprintf(stderr,
                     "note: no tokenizer written (default tokenizer fixture not found; use --tokenizer-from)\n");
    else if (endsWith(tok, ".gguf"))
        copyGgufTokenizer(tok, o.vocab, w, ids);
    else
        sentencepieceToGguf(tok, o.vocab, w, ids);

    // Rounding target for tensors GGUF keeps in F32 (norms, biases), so they equal the HF copy.
    const DType roundType = dt == DType::Q8_0 ? DType::F32 : dt;
    for (const auto& s : specs) {
        DType store = dt;
        if (s.shape.size() == 1) {
            store = DType::F32;  // llama.cpp keeps norms and biases in F32
        } else if (dt == DType::Q8_0 && s.shape.back() % 32 != 0) {
            store = DType::F16;  // as llama.cpp falls back when a row is not whole blocks
        }
        std::vector<int64_t> perm;
        if (s.permuteHeads > 0) perm = ggufRotaryPermutation(s.shape[0], s.permuteHeads);
        // 2-D tensors are rounded by their own encoding already.
        const DType round = s.shape.size() == 1 ? roundType : DType::F32;
        WB_TRY(w.addTensor(s.ggufName, store, s.shape, makeProducer(o, s, store, round, std::move(perm))));
    }
    if (fs::path(o.out).has_parent_path()) {
        std::error_code ec;
        fs::create_directories(fs::path(o.out).parent_path(), ec);
    }
    return w.write(o.out);
}

Result<void> writeHf(const Options& o, const std::vector<TensorSpec>& specs) {
    const DType dt = modelDtype(o);
    SafetensorsWriter w;
    for (const auto& s : specs) WB_TRY(w.addTensor(s.hfName, dt, s.shape, makeProducer(o, s, dt, DType::F32, {})));
    WB_TRY(w.writeSharded(o.out, o.shards));

    SpecialIds ids;
    std::string tok = o.tokenizerFrom;
    if (tok.empty() && o.vocab == 32000) tok = findFixture("tokenizers/llama2/tokenizer.model");
    if (tok.empty())
        std::fprintf(stderr, "note: no tokenizer written (no SentencePiece model for vocab %lld)\n",
                     (long long)o.vocab);
    else if (endsWith(tok, ".gguf"))
        std::fprintf(stderr, "note: no tokenizer written: an HF folder needs a tokenizer.model, not a GGUF\n");
    else
        copyHfTokenizer(tok, o, ids);

    const char* torchDtype = dt == DType::F32 ? "float32" : dt == DType::BF16 ? "bfloat16" : "float16";
    nlohmann::ordered_json cfg;
    cfg["architectures"] = {o.qkvBias ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
    cfg["model_type"] = o.qkvBias ? "qwen2" : "llama";
    cfg["hidden_size"] = o.dim;
    cfg["intermediate_size"] = o.ffn;
    cfg["num_hidden_layers"] = o.layers;
    cfg["num_attention_heads"] = o.heads;
    cfg["num_key_value_heads"] = o.kvHeads;
    cfg["head_dim"] = o.dim / o.heads;
    cfg["hidden_act"] = "silu";
    cfg["max_position_embeddings"] = o.ctx;
    cfg["rms_norm_eps"] = o.normEps;
    cfg["rope_theta"] = o.ropeTheta;
    cfg["rope_scaling"] = nullptr;
    cfg["vocab_size"] = o.vocab;
    cfg["tie_word_embeddings"] = o.tied;
    cfg["bos_token_id"] = ids.bos;
    cfg["eos_token_id"] = ids.eos;
    cfg["initializer_range"] = 0.02;
    cfg["attention_dropout"] = 0.0;
    if (o.qkvBias) {
        cfg["use_sliding_window"] = false;
        cfg["sliding_window"] = o.ctx;
        cfg["max_window_layers"] = o.layers;
    } else {
        cfg["attention_bias"] = false;
        cfg["mlp_bias"] = false;
        cfg["pretraining_tp"] = 1;
    }
    cfg["torch_dtype"] = torchDtype;
    cfg["use_cache"] = true;
    cfg["transformers_version"] = "4.44.0";
    WB_TRY(writeJson(o.out + "/config.json", cfg));
    nlohmann::ordered_json gen = {
        {"bos_token_id", ids.bos}, {"eos_token_id", ids.eos}, {"transformers_version", "4.44.0"}};
    return writeJson(o.out + "/generation_config.json", gen);
}

// ---------------------------------------------------------------------------------------------------------------
// GLM-4.1V-9B-Thinking at its published size (random BF16 weights), and the GGUF pair of any GLM folder.

/// config.json of zai-org/GLM-4.1V-9B-Thinking (AutoGLM-Phone-9B ships the same shapes), with `textLayers`
/// decoder layers (40 in the published model).
nlohmann::ordered_json glm9bConfig(int64_t textLayers) {
    using oj = nlohmann::ordered_json;
    const oj eos = {151329, 151336, 151338, 151348};
    oj text = {{"model_type", "glm4v_text"},
               {"attention_bias", true},
               {"attention_dropout", 0.0},
               {"eos_token_id", eos},
               {"hidden_act", "silu"},
               {"hidden_size", 4096},
               {"head_dim", 128},
               {"image_token_id", 151343},
               {"initializer_range", 0.02},
               {"intermediate_size", 13696},
               {"max_position_embeddings", 65536},
               {"num_attention_heads", 32},
               {"num_hidden_layers", textLayers},
               {"num_key_value_heads", 2},
               {"pad_token_id", 151329},
               {"partial_rotary_factor", 0.5},
               {"rms_norm_eps", 1e-05},
               {"rope_scaling", {{"rope_type", "default"}, {"mrope_section", {8, 12, 12}}}},
               {"rope_theta", 10000.0},
               {"tie_word_embeddings", false},
               {"torch_dtype", "bfloat16"},
               {"use_cache", true},
               {"vocab_size", 151552}};
    oj vision = {{"model_type", "glm4v"},      {"attention_bias", false}, {"attention_dropout", 0.0},
                 {"depth", 24},                {"hidden_act", "silu"},    {"hidden_size", 1536},
                 {"image_size", 336},          {"in_channels", 3},        {"initializer_range", 0.02},
                 {"intermediate_size", 13696}, {"num_heads", 12},         {"out_hidden_size", 4096},
                 {"patch_size", 14},           {"rms_norm_eps", 1e-05},   {"spatial_merge_size", 2},
                 {"temporal_patch_size", 2}};
    oj c = {{"architectures", {"Glm4vForConditionalGeneration"}},
            {"model_type", "glm4v"},
            {"attention_bias", true},
            {"attention_dropout", 0.0},
            {"pad_token_id", 151329},
            {"eos_token_id", eos},
            {"image_start_token_id", 151339},
            {"image_end_token_id", 151340},
            {"video_start_token_id", 151341},
            {"video_end_token_id", 151342},
            {"image_token_id", 151343},
            {"video_token_id", 151344},
            {"hidden_act", "silu"},
            {"hidden_size", 4096},
            {"initializer_range", 0.02},
            {"intermediate_size", 13696},
            {"max_position_embeddings", 65536},
            {"num_attention_heads", 32},
            {"num_hidden_layers", textLayers},
            {"num_key_value_heads", 2},
            {"rms_norm_eps", 1e-05},
            {"rope_theta", 10000.0},
            {"partial_rotary_factor", 0.5},
            {"tie_word_embeddings", false},
            {"torch_dtype", "bfloat16"},
            {"transformers_version", "4.53.0.dev0"},
            {"use_cache", true},
            {"vocab_size", 151552},
            {"text_config", text},
            {"vision_config", vision}};
    return c;
}

/// Tensors of GLM-4.1V-9B in the current HF names, in the order Transformers saves them.
std::vector<TensorSpec> glm9bTensors(int64_t textLayers) {
    const int64_t D = 4096, F = 13696, V = 151552, KV = 2 * 128, VD = 1536, VF = 13696;
    std::vector<TensorSpec> t;
    const std::string T = "model.language_model.", Vn = "model.visual.";
    t.push_back({T + "embed_tokens.weight", "", {V, D}});
    for (int64_t l = 0; l < textLayers; ++l) {
        const std::string p = T + "layers." + std::to_string(l) + ".";
        t.push_back({p + "input_layernorm.weight", "", {D}, Init::Ones});
        t.push_back({p + "self_attn.q_proj.weight", "", {D, D}});
        t.push_back({p + "self_attn.q_proj.bias", "", {D}});
        t.push_back({p + "self_attn.k_proj.weight", "", {KV, D}});
        t.push_back({p + "self_attn.k_proj.bias", "", {KV}});
        t.push_back({p + "self_attn.v_proj.weight", "", {KV, D}});
        t.push_back({p + "self_attn.v_proj.bias", "", {KV}});
        t.push_back({p + "self_attn.o_proj.weight", "", {D, D}});
        t.push_back({p + "post_self_attn_layernorm.weight", "", {D}, Init::Ones});
        t.push_back({p + "post_attention_layernorm.weight", "", {D}, Init::Ones});
        t.push_back({p + "mlp.gate_up_proj.weight", "", {2 * F, D}});
        t.push_back({p + "mlp.down_proj.weight", "", {D, F}});
        t.push_back({p + "post_mlp_layernorm.weight", "", {D}, Init::Ones});
    }
    t.push_back({T + "norm.weight", "", {D}, Init::Ones});
    t.push_back({Vn + "patch_embed.proj.weight", "", {VD, 3, 2, 14, 14}});
    t.push_back({Vn + "patch_embed.proj.bias", "", {VD}});
    t.push_back({Vn + "post_conv_layernorm.weight", "", {VD}, Init::Ones});
    t.push_back({Vn + "embeddings.position_embedding.weight", "", {576, VD}});
    for (int64_t b = 0; b < 24; ++b) {
        const std::string p = Vn + "blocks." + std::to_string(b) + ".";
        t.push_back({p + "norm1.weight", "", {VD}, Init::Ones});
        t.push_back({p + "attn.qkv.weight", "", {3 * VD, VD}});
        t.push_back({p + "attn.proj.weight", "", {VD, VD}});
        t.push_back({p + "norm2.weight", "", {VD}, Init::Ones});
        // The blocks' MLP is out_hidden_size wide (as Transformers builds Glm4vVisionMlp).
        t.push_back({p + "mlp.gate_proj.weight", "", {D, VD}});
        t.push_back({p + "mlp.up_proj.weight", "", {D, VD}});
        t.push_back({p + "mlp.down_proj.weight", "", {VD, D}});
    }
    t.push_back({Vn + "post_layernorm.weight", "", {VD}, Init::Ones});
    t.push_back({Vn + "downsample.weight", "", {D, VD, 2, 2}});
    t.push_back({Vn + "downsample.bias", "", {D}});
    t.push_back({Vn + "merger.proj.weight", "", {D, D}});
    t.push_back({Vn + "merger.post_projection_norm.weight", "", {D}, Init::Ones});
    t.push_back({Vn + "merger.post_projection_norm.bias", "", {D}});
    t.push_back({Vn + "merger.gate_proj.weight", "", {VF, D}});
    t.push_back({Vn + "merger.up_proj.weight", "", {VF, D}});
    t.push_back({Vn + "merger.down_proj.weight", "", {D, VF}});
    t.push_back({"lm_head.weight", "", {V, D}});
    return t;
}

/// A byte-level tokenizer for the 9B folder: the 256 byte tokens, and GLM-4's special tokens at their published
/// ids (the real 151k-token vocabulary cannot be made here; prompts then tokenize byte by byte).
Result<void> writeGlm9bTokenizer(const std::string& dir) {
    nlohmann::json vocab = nlohmann::json::object();
    const auto byteMap = gpt2ByteToCodepoint();
    for (int b = 0; b < 256; ++b) {
        std::string piece;
        unicode::appendUtf8(piece, byteMap[size_t(b)]);
        vocab[piece] = b;
    }
    const std::pair<int, const char*> specials[] = {
        {151329, "<|endoftext|>"},    {151330, "[MASK]"},           {151331, "[gMASK]"},
        {151332, "[sMASK]"},          {151333, "<sop>"},            {151334, "<eop>"},
        {151335, "<|system|>"},       {151336, "<|user|>"},         {151337, "<|assistant|>"},
        {151338, "<|observation|>"},  {151339, "<|begin_of_image|>"}, {151340, "<|end_of_image|>"},
        {151341, "<|begin_of_video|>"}, {151342, "<|end_of_video|>"}, {151343, "<|image|>"},
        {151344, "<|video|>"},        {151350, "<think>"},          {151351, "</think>"}};
    nlohmann::json added = nlohmann::json::array();
    for (const auto& [id, content] : specials) {
        const bool special = id < 151350;  // <think> and </think> print, as in GLM's tokenizer
        added.push_back({{"id", id}, {"content", content}, {"special", special}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"single_word", false}});
    }
    nlohmann::json tj = {{"added_tokens", added},
                         {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                         {"decoder", {{"type", "ByteLevel"}}},
                         {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
    std::ofstream f(dir + "/tokenizer.json", std::ios::binary);
    f << tj.dump();
    if (!f.good()) return makeError(dir + "/tokenizer.json: cannot write");
    nlohmann::ordered_json tc = {{"eos_token", "<|endoftext|>"},
                                 {"pad_token", "<|endoftext|>"},
                                 {"add_bos_token", false},
                                 {"chat_template", tinyGlmChatTemplate()}};
    return writeJson(dir + "/tokenizer_config.json", tc);
}

Result<void> writeGlm9b(const std::string& dir, int64_t textLayers, uint64_t seed, int shards) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return makeError(dir + ": cannot create the folder (" + ec.message() + ")");
    Options o;
    o.seed = seed;
    SafetensorsWriter w;
    for (const auto& s : glm9bTensors(textLayers))
        WB_TRY(w.addTensor(s.hfName, DType::BF16, s.shape, makeProducer(o, s, DType::BF16, DType::F32, {})));
    // As the published folder: shards of about 5 GB (4 for the whole model) unless told.
    if (shards <= 0) shards = int(std::max<uint64_t>(1, (w.totalBytes() + 4'999'999'999ull) / 5'000'000'000ull));
    WB_TRY(w.writeSharded(dir, shards));
    WB_TRY(writeJson(dir + "/config.json", glm9bConfig(textLayers)));
    WB_TRY(writeJson(dir + "/generation_config.json",
                     {{"do_sample", true},
                      {"eos_token_id", {151329, 151336, 151338}},
                      {"pad_token_id", 151329},
                      {"temperature", 1.0},
                      {"top_k", 2},
                      {"top_p", 0.6},
                      {"transformers_version", "4.53.0.dev0"}}));
    WB_TRY(writeJson(dir + "/preprocessor_config.json",
                     {{"size", {{"shortest_edge", 12544}, {"longest_edge", 9633792}}},
                      {"do_rescale", true},
                      {"patch_size", 14},
                      {"temporal_patch_size", 2},
                      {"merge_size", 2},
                      {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
                      {"image_std", {0.26862954, 0.26130258, 0.27577711}},
                      {"image_processor_type", "Glm4vImageProcessor"},
                      {"processor_class", "Glm4vProcessor"}}));
    return writeGlm9bTokenizer(dir);
}

int runGlm(int argc, char** argv, int archIndex) {
    const std::string arch = argv[archIndex + 1];
    if (arch != "glm4v" && arch != "glm4") {
        std::fprintf(stderr, "wb-make-model: unknown --arch '%s' (glm4v, glm4; Llama shapes need no --arch)\n",
                     arch.c_str());
        return 2;
    }
    std::string out, preset = "tiny", format = "hf", dtype = "f16", from;
    int64_t textLayers = 40;
    bool textLayersGiven = false, shardsGiven = false;
    TinyGlmOptions g;
    g.vision = arch == "glm4v";
    for (int k = 1; k < argc; ++k) {
        const std::string a = argv[k];
        if (k == archIndex || k == archIndex + 1) continue;
        const bool takesValue = a == "--out" || a == "--seed" || a == "--shards" || a == "--preset" ||
                                a == "--text-layers" || a == "--format" || a == "--dtype" || a == "--from";
        if (!takesValue) {
            std::fprintf(stderr,
                         "wb-make-model: --arch %s takes --out, --seed, --shards, --preset tiny|9b, --text-layers, "
                         "--format hf|gguf, --dtype and --from; '%s' is not taken: the GLM shapes are those of the "
                         "preset (tiny: text dim 64, 2 layers, 4 heads / 2 KV heads, ffn 96, vocab 300%s)\n",
                         arch.c_str(), a.c_str(), g.vision ? "; vision 2 blocks of width 32" : "");
            return 2;
        }
        if (k + 1 >= argc) {
            std::fprintf(stderr, "wb-make-model: %s needs a value\n", a.c_str());
            return 2;
        }
        const std::string v = argv[++k];
        if (a == "--out") out = v;
        else if (a == "--preset") preset = v;
        else if (a == "--format") format = v;
        else if (a == "--dtype") dtype = v;
        else if (a == "--from") from = v;
        else {
            char* end = nullptr;
            const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            const bool isNumber = !v.empty() && v[0] != '-' && end && *end == '\0';
            if (a == "--seed") {
                if (!isNumber || n > 0xFFFFFFFFull) {
                    std::fprintf(stderr, "wb-make-model: --seed '%s' is not an integer in 0..4294967295\n", v.c_str());
                    return 2;
                }
                g.seed = uint32_t(n);
            } else if (a == "--shards") {
                if (!isNumber || n < 1 || n > 64) {
                    std::fprintf(stderr, "wb-make-model: --shards '%s' is not a shard count in 1..64\n", v.c_str());
                    return 2;
                }
                g.shards = int(n);
                shardsGiven = true;
            } else {  // --text-layers
                if (!isNumber || n < 1 || n > 40) {
                    std::fprintf(stderr, "wb-make-model: --text-layers '%s' is not a layer count in 1..40\n",
                                 v.c_str());
                    return 2;
                }
                textLayers = int64_t(n);
                textLayersGiven = true;
            }
        }
    }
    if (preset != "tiny" && preset != "9b") {
        std::fprintf(stderr, "wb-make-model: --arch %s: unknown --preset '%s' (tiny, 9b)\n", arch.c_str(),
                     preset.c_str());
        return 2;
    }
    if (preset == "9b" && arch != "glm4v") {
        std::fprintf(stderr, "wb-make-model: --preset 9b is GLM-4.1V-9B-Thinking: use --arch glm4v\n");
        return 2;
    }
    if (textLayersGiven && preset != "9b") {
        std::fprintf(stderr, "wb-make-model: --text-layers applies to --preset 9b\n");
        return 2;
    }
    if (format != "hf" && format != "gguf") {
        std::fprintf(stderr, "wb-make-model: --format must be hf or gguf\n");
        return 2;
    }
    DType type = DType::F16;
    if (dtype == "f32") type = DType::F32;
    else if (dtype == "bf16") type = DType::BF16;
    else if (dtype == "q8_0") type = DType::Q8_0;
    else if (dtype == "q4_0") type = DType::Q4_0;
    else if (dtype == "q4_k_m") type = DType::Q4_K;
    else if (dtype != "f16") {
        std::fprintf(stderr, "wb-make-model: --dtype for GLM GGUF files is f32, f16, bf16, q8_0, q4_0 or q4_k_m\n");
        return 2;
    }
    if (format == "hf" && dtype != "f16") {
        std::fprintf(stderr, "wb-make-model: --dtype applies to --format gguf (the HF folders are F32 tiny, BF16 9b)\n");
        return 2;
    }
    if (out.empty()) {
        std::fprintf(stderr, "wb-make-model: --arch %s needs --out DIR\n", arch.c_str());
        return 2;
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::string hfDir = out;
    if (!from.empty()) {
        if (format != "gguf") {
            std::fprintf(stderr, "wb-make-model: --from converts a folder: add --format gguf\n");
            return 2;
        }
        hfDir = from;
    } else if (preset == "9b") {
        auto r = writeGlm9b(out, textLayers, g.seed, shardsGiven ? g.shards : 0);
        if (!r) {
            std::fprintf(stderr, "wb-make-model: %s\n", r.error().message.c_str());
            return 1;
        }
        std::printf("wrote %s (GLM-4.1V-9B-Thinking shapes, %lld text layers, random BF16 weights, seed %u)\n",
                    out.c_str(), (long long)textLayers, g.seed);
    } else {
        auto r = writeTinyGlmCheckpoint(out, g);
        if (!r) {
            std::fprintf(stderr, "wb-make-model: %s\n", r.error().message.c_str());
            return 1;
        }
        std::printf("wrote %s (tiny %s, random weights, seed %u, %d shard(s))\n", out.c_str(),
                    g.vision ? "GLM-4.1V" : "GLM-4", g.seed, g.shards);
    }
    if (format == "gguf") {
        GlmGgufOptions go;
        go.textType = type;
        // As Q4_K_M / Q4_0 releases ship an F16 mmproj.
        go.visionType = type == DType::Q4_K || type == DType::Q4_0 ? DType::F16 : type;
        auto cfg = glmConfigFromFolder(hfDir);
        const bool vision = cfg && cfg->hasVision;
        const std::string textPath = out + "/" + (vision ? "glm4v" : "glm4") + "-" + dtype + ".gguf";
        const std::string mmPath =
            vision ? out + "/mmproj-" + (type == DType::Q4_K ? std::string("f16") : dtype) + ".gguf" : std::string();
        auto r = writeGlmGguf(hfDir, textPath, mmPath, go);
        if (!r) {
            std::fprintf(stderr, "wb-make-model: %s\n", r.error().message.c_str());
            return 1;
        }
        std::printf("wrote %s (glm4, %d tensors)%s%s%s\n", textPath.c_str(), r->textTensors,
                    vision ? " and " : "", mmPath.c_str(), vision ? " (clip, glm4v projector)" : "");
    }
    std::printf("in %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    return 0;
}

int run(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
    }
    // GLM-4 / GLM-4.1V: a tiny random checkpoint or GLM-4.1V-9B's shapes, in the published HF layout, and
    // optionally the GGUF pair (llama.cpp's glm4 text model + glm4v mmproj) written from it.
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--arch") return runGlm(argc, argv, i);
    auto opts = parseArgs(argc, argv);
    if (!opts) {
        std::fprintf(stderr, "wb-make-model: %s\n%s", opts.error().message.c_str(), kUsage);
        return 2;
    }
    const Options& o = *opts;
    const auto specs = llamaTensors(o);
    int64_t params = 0;
    for (const auto& s : specs) {
        int64_t n = 1;
        for (int64_t d : s.shape) n *= d;
        params += n;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto r = o.format == "gguf" ? writeGguf(o, specs) : writeHf(o, specs);
    if (!r) {
        std::fprintf(stderr, "wb-make-model: %s\n", r.error().message.c_str());
        return 1;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "wrote %s (%s, %s): %lld tensors, %.3fB parameters, dim %lld, %lld layers, ffn %lld, heads %lld/%lld, "
        "vocab %lld, seed %llu in %.1f s\n",
        o.out.c_str(), o.format.c_str(), o.dtype.c_str(), (long long)specs.size(), params / 1e9, (long long)o.dim,
        (long long)o.layers, (long long)o.ffn, (long long)o.heads, (long long)o.kvHeads, (long long)o.vocab,
        (unsigned long long)o.seed, secs);
    return 0;
}

}  // namespace
}  // namespace wb

int main(int argc, char** argv) {
    return wb::run(argc, argv);
}
