#include "formats/kquant_encode.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace wb {

namespace {

constexpr int kQKK = 256;

}  // namespace

DType q4KMTypeFor(const std::string& name, int layer, int numLayers, int64_t cols) {
    auto moreBits = [&] {
        return layer < numLayers / 8 || layer >= 7 * numLayers / 8 || (layer - numLayers / 8) % 3 == 2;
    };
    auto endsWith = [&](const char* s) {
        const std::string suf = s;
        return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    DType t = DType::Q4_K;
    if (name == "output.weight") t = DType::Q6_K;
    else if (layer >= 0 && (endsWith("attn_v.weight") || endsWith("ffn_down.weight")) && moreBits()) t = DType::Q6_K;
    if (cols % kQKK != 0) t = t == DType::Q6_K ? DType::Q8_0 : DType::Q5_0;
    if (cols % dtypeBlockSize(t) != 0) t = DType::F16;  // not even whole 32-value blocks
    return t;
}

}  // namespace wb
