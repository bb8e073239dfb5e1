// wb-quantize: rewrites a Llama-layout GGUF file with its 2-D weights in another type, as llama.cpp's
// llama-quantize would choose them, so that the engine and llama.cpp can be timed on the same files and the
// engine can be tested on files that mix types per tensor.
//
// Types per tensor (llama.cpp's llama_tensor_get_type, read for the rules, not copied):
//   f16, bf16, q8_0: every 2-D weight in that type;
//   q4_0, q5_0, q4_k, q6_k: every 2-D weight in that type, output.weight in Q6_K;
//   q4_k_m: Q4_K, except output.weight, and attn_v / ffn_down of the layers where "more bits" pays (the first and
//     last eighth of the layers and every third between), which get Q6_K.
// A K-quant needs rows that are a multiple of 256 values; where they are not (ffn_down of a 13,696-wide FFN, as in
// GLM-4-9B), llama.cpp falls back to Q5_0 for Q4_K and Q8_0 for Q6_K (F16 if even 32 does not divide the row),
// and so does this tool. 1-D tensors (norms, biases) are stored in F32.
//
// The K-quant encoders here are a plain min/max fit (weight_matrix.cpp), not llama.cpp's search for the best
// scales: the files are right in layout and close in accuracy, which is what timing and testing need.
//
// Usage: wb-quantize IN.gguf OUT.gguf f16|bf16|q8_0|q4_0|q5_0|q4_k|q6_k|q4_k_m
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "backend/cpu/weight_matrix.h"
#include "core/dtype.h"
#include "formats/gguf.h"
#include "formats/kquant_encode.h"
#include "formats/gguf_writer.h"

using namespace wb;

namespace {

struct Scheme {
    DType base;
    bool mixed;        // Q4_K_M's promotions
    int llamaFtype;    // general.file_type as llama.cpp numbers it
};

const std::map<std::string, Scheme>& schemes() {
    static const std::map<std::string, Scheme> s = {
        {"f16", {DType::F16, false, 1}},    {"bf16", {DType::BF16, false, 32}}, {"q8_0", {DType::Q8_0, false, 7}},
        {"q4_0", {DType::Q4_0, false, 2}},  {"q5_0", {DType::Q5_0, false, 8}},  {"q4_k", {DType::Q4_K, false, 14}},
        {"q6_k", {DType::Q6_K, false, 18}}, {"q4_k_m", {DType::Q4_K, true, 15}}};
    return s;
}

bool isKQuant(DType t) { return t == DType::Q4_K || t == DType::Q6_K; }

int layerOf(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    return std::atoi(name.c_str() + 4);
}

DType chooseType(const Scheme& s, const TensorInfo& t, int numLayers) {
    if (t.shape.size() != 2) return t.dtype == DType::I32 ? DType::I32 : DType::F32;
    DType type = s.base;
    const bool quantized = s.base != DType::F16 && s.base != DType::BF16;
    if (quantized && t.name == "output.weight" && s.base != DType::Q8_0) type = DType::Q6_K;
    const int64_t cols = t.shape[1];
    if (s.mixed) return q4KMTypeFor(t.name, layerOf(t.name), numLayers, cols);
    if (isKQuant(type) && cols % 256 != 0) type = type == DType::Q4_K ? DType::Q5_0 : DType::Q8_0;
    if (cols % dtypeBlockSize(type) != 0) type = DType::F16;
    return type;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 || !schemes().count(argv[3])) {
        std::fprintf(stderr, "usage: wb-quantize IN.gguf OUT.gguf f16|bf16|q8_0|q4_0|q5_0|q4_k|q6_k|q4_k_m\n");
        return 2;
    }
    const Scheme& scheme = schemes().at(argv[3]);
    auto src = GgufFile::open(argv[1]);
    if (!src) {
        std::fprintf(stderr, "wb-quantize: %s\n", src.error().message.c_str());
        return 1;
    }
    int numLayers = 0;
    for (const TensorInfo& t : (*src)->tensors()) numLayers = std::max(numLayers, layerOf(t.name) + 1);

    GgufWriter out;
    for (const auto& [key, value] : (*src)->metadata())
        if (key != "general.alignment") out.set(key, value);
    out.setU32("general.file_type", uint32_t(scheme.llamaFtype));

    std::map<std::string, int> counts;
    std::vector<float> row;
    for (const TensorInfo& t : (*src)->tensors()) {
        const DType type = chooseType(scheme, t, numLayers);
        const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
        const int64_t rows = cols > 0 ? t.numElements() / cols : 0;
        if (cols % dtypeBlockSize(t.dtype) != 0 || t.numBytes < rows * dtypeRowBytes(t.dtype, cols)) {
            std::fprintf(stderr, "wb-quantize: %s: tensor %s is not a whole number of %s rows\n", argv[1],
                         t.name.c_str(), std::string(dtypeName(t.dtype)).c_str());
            return 1;
        }
        std::vector<uint8_t> bytes;
        if (type == t.dtype) {
            bytes.assign(t.data, t.data + rows * dtypeRowBytes(t.dtype, cols));
        } else {
            bytes.resize(size_t(rows * dtypeRowBytes(type, cols)));
            row.resize(size_t(cols));
            for (int64_t r = 0; r < rows; ++r) {
                dequantizeRow(t.dtype, t.data + r * dtypeRowBytes(t.dtype, cols), row.data(), cols);
                quantizeRow(type, row.data(), bytes.data() + r * dtypeRowBytes(type, cols), cols);
            }
        }
        ++counts[std::string(dtypeName(type))];
        if (auto ok = out.addTensor(t.name, type, t.shape, std::move(bytes)); !ok) {
            std::fprintf(stderr, "wb-quantize: %s: %s\n", t.name.c_str(), ok.error().message.c_str());
            return 1;
        }
    }
    if (auto ok = out.write(argv[2]); !ok) {
        std::fprintf(stderr, "wb-quantize: %s\n", ok.error().message.c_str());
        return 1;
    }
    std::printf("%s:", argv[2]);
    for (const auto& [name, n] : counts) std::printf(" %d %s", n, name.c_str());
    std::printf("\n");
    return 0;
}
