#include "core/dtype.h"

namespace wb {

std::string_view dtypeName(DType t) {
    switch (t) {
        case DType::F32: return "F32";
        case DType::F16: return "F16";
        case DType::BF16: return "BF16";
        case DType::Q8_0: return "Q8_0";
        case DType::Q4_0: return "Q4_0";
        case DType::Q5_0: return "Q5_0";
        case DType::Q4_K: return "Q4_K";
        case DType::Q6_K: return "Q6_K";
        case DType::I8: return "INT8";
        case DType::I32: return "I32";
    }
    return "?";
}

int64_t dtypeBlockSize(DType t) {
    switch (t) {
        case DType::Q8_0:
        case DType::Q4_0: return 32;
        case DType::Q5_0: return 32;
        case DType::Q4_K:
        case DType::Q6_K: return 256;
        default: return 1;
    }
}

int64_t dtypeBlockBytes(DType t) {
    switch (t) {
        case DType::F32: return 4;
        case DType::F16:
        case DType::BF16: return 2;
        case DType::Q8_0: return 34;
        case DType::Q4_0: return 18;
        case DType::Q5_0: return 22;
        case DType::Q4_K: return 144;
        case DType::Q6_K: return 210;
        case DType::I8: return 1;
        case DType::I32: return 4;
    }
    return 1;
}

}  // namespace wb
