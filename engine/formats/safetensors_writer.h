// Safetensors writer: one .safetensors file (8-byte LE header length, JSON header with dtype, shape and
// data_offsets, __metadata__ {"format": "pt"}, header padded with spaces to 8 bytes), or a checkpoint folder
// sharded into N files with model.safetensors.index.json as Hugging Face writes it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/result.h"
#include "formats/tensor_producer.h"

namespace wb {

/// Safetensors dtype string ("F32", "F16", "BF16", "I32", "I8"); empty when the format has none (block types).
std::string safetensorsDtypeName(DType t);

class SafetensorsWriter {
public:
    SafetensorsWriter();

    /// String entries of __metadata__ ("format" is "pt" unless replaced).
    void setMetadata(const std::string& key, const std::string& value) { m_metadata[key] = value; }

    /// `shape` in PyTorch order; `bytes` must hold exactly the encoded size. Tensors are laid out in the order
    /// they are added.
    Result<void> addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                           std::vector<uint8_t> bytes);
    /// As above, with the data produced while the file is written.
    Result<void> addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape, TensorProducer producer);

    size_t tensorCount() const { return m_tensors.size(); }
    uint64_t totalBytes() const;

    /// Writes every tensor into one file.
    Result<void> write(const std::string& path) const;
    /// Writes the tensors into `dir` (created if needed). shards == 1: model.safetensors alone. shards > 1:
    /// model-0000i-of-0000N.safetensors, split in order into parts of about equal size (none empty), plus
    /// model.safetensors.index.json with metadata.total_size and weight_map.
    Result<void> writeSharded(const std::string& dir, int shards) const;

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
    Result<void> writeRange(const std::string& path, size_t begin, size_t end) const;

    std::map<std::string, std::string> m_metadata;
    std::vector<Tensor> m_tensors;
};

}  // namespace wb
