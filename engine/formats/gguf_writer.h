// GGUF v3 writer: metadata of every GGUF type (arrays of strings and numbers included) and tensors aligned to
// general.alignment. Tensor data may be handed over as bytes or produced one tensor at a time while the file is
// written, so a multi-gigabyte checkpoint never has to sit in memory whole.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/result.h"
#include "formats/gguf.h"
#include "formats/tensor_producer.h"

namespace wb {

/// GGML type id of a DType (F32 0, F16 1, Q4_0 2, Q8_0 8, Q4_K 12, Q6_K 14, I32 26, BF16 30); -1 if GGUF has none.
int ggmlTypeOf(DType t);

class GgufWriter {
public:
    GgufWriter();

    /// Any metadata value, as the reader represents it (scalars of every type, arrays of strings or numbers).
    /// Setting a key again replaces its value in place; keys are written in first-set order.
    void set(const std::string& key, GgufValue value);
    void setString(const std::string& key, std::string v);
    void setBool(const std::string& key, bool v);
    void setU8(const std::string& key, uint8_t v) { setNumber(key, GgufType::U8, v); }
    void setI8(const std::string& key, int8_t v) { setNumber(key, GgufType::I8, v); }
    void setU16(const std::string& key, uint16_t v) { setNumber(key, GgufType::U16, v); }
    void setI16(const std::string& key, int16_t v) { setNumber(key, GgufType::I16, v); }
    void setU32(const std::string& key, uint32_t v) { setNumber(key, GgufType::U32, v); }
    void setI32(const std::string& key, int32_t v) { setNumber(key, GgufType::I32, v); }
    void setU64(const std::string& key, uint64_t v) { setNumber(key, GgufType::U64, double(v)); }
    void setI64(const std::string& key, int64_t v) { setNumber(key, GgufType::I64, double(v)); }
    void setF32(const std::string& key, float v) { setNumber(key, GgufType::F32, v); }
    void setF64(const std::string& key, double v) { setNumber(key, GgufType::F64, v); }
    void setNumber(const std::string& key, GgufType type, double v);
    void setStringArray(const std::string& key, std::vector<std::string> v);
    /// Elements are converted to `elemType` when written (any numeric type, or Bool).
    void setNumberArray(const std::string& key, GgufType elemType, std::vector<double> v);

    /// Tensor alignment in bytes (a power of two); also recorded as general.alignment. Default 32.
    void setAlignment(uint32_t alignment);

    /// `shape` is in PyTorch row-major order ({out, in} for a Linear weight); it is written as ne[] reversed.
    /// `bytes` must hold exactly the encoded size.
    Result<void> addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                           std::vector<uint8_t> bytes);
    /// As above, with the data produced during write().
    Result<void> addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape, TensorProducer producer);

    size_t tensorCount() const { return m_tensors.size(); }

    /// Writes the whole file (through a temporary name, renamed on success so a failed write leaves no
    /// half-file under `path`).
    Result<void> write(const std::string& path) const;

private:
    struct Tensor {
        std::string name;
        DType dtype;
        std::vector<int64_t> shape;
        size_t numBytes;
        std::vector<uint8_t> bytes;
        TensorProducer producer;
    };
    Result<void> checkTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                             size_t* numBytes) const;

    std::vector<std::pair<std::string, GgufValue>> m_kv;
    std::vector<Tensor> m_tensors;
    uint32_t m_alignment = 32;
};

}  // namespace wb
