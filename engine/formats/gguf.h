// GGUF v2/v3 reader: metadata key/values and tensor infos, with the tensor data memory-mapped in place.
// Every length, count and offset is bounds-checked; a malformed file yields an Error naming the file and
// the field or tensor, never a crash.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/result.h"
#include "formats/tensor_info.h"

namespace wb {

enum class GgufType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
    U64 = 10, I64 = 11, F64 = 12,
};

/// One metadata value. Scalars: `type` tells which of num/str/flag is set (all integer and float types are
/// kept in `num`, exact up to 2^53). Arrays: `elemType`, and `strings` or `numbers` hold the elements.
struct GgufValue {
    GgufType type = GgufType::U32;
    double num = 0;
    bool flag = false;
    std::string str;
    GgufType elemType = GgufType::U32;
    std::vector<std::string> strings;
    std::vector<double> numbers;
};

class GgufFile {
public:
    static Result<std::shared_ptr<GgufFile>> open(const std::string& path);

    const std::string& path() const { return m_file->path(); }
    uint32_t version() const { return m_version; }
    const std::map<std::string, GgufValue>& metadata() const { return m_kv; }
    const std::vector<TensorInfo>& tensors() const { return m_tensors; }
    const TensorInfo* findTensor(const std::string& name) const;

    const GgufValue* find(const std::string& key) const;
    std::optional<std::string> getString(const std::string& key) const;
    std::optional<int64_t> getInt(const std::string& key) const;
    std::optional<double> getFloat(const std::string& key) const;
    std::optional<bool> getBool(const std::string& key) const;
    /// nullptr when absent or not an array of strings.
    const std::vector<std::string>* getStringArray(const std::string& key) const;
    /// nullptr when absent or not a numeric array.
    const std::vector<double>* getNumberArray(const std::string& key) const;

    std::shared_ptr<MappedFile> mappedFile() const { return m_file; }

private:
    std::shared_ptr<MappedFile> m_file;
    uint32_t m_version = 0;
    std::map<std::string, GgufValue> m_kv;
    std::vector<TensorInfo> m_tensors;
    std::map<std::string, size_t> m_tensorIndex;
};

}  // namespace wb
