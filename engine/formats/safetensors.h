// Safetensors reader: one file, or a folder's shards joined through model.safetensors.index.json (or every
// *.safetensors in the folder when there is no index). Tensors stay memory-mapped.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/result.h"
#include "formats/tensor_info.h"

namespace wb {

class SafetensorsFile {
public:
    static Result<std::shared_ptr<SafetensorsFile>> open(const std::string& path);
    const std::vector<TensorInfo>& tensors() const { return m_tensors; }
    const std::map<std::string, std::string>& metadata() const { return m_metadata; }
    std::shared_ptr<MappedFile> mappedFile() const { return m_file; }

private:
    std::shared_ptr<MappedFile> m_file;
    std::vector<TensorInfo> m_tensors;
    std::map<std::string, std::string> m_metadata;
};

/// All tensors of a checkpoint folder, across shards.
class SafetensorsSet {
public:
    static Result<std::shared_ptr<SafetensorsSet>> openFolder(const std::string& dir);
    const TensorInfo* find(const std::string& name) const;
    const std::map<std::string, TensorInfo>& tensors() const { return m_tensors; }
    const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return m_files; }

private:
    std::vector<std::shared_ptr<SafetensorsFile>> m_files;
    std::map<std::string, TensorInfo> m_tensors;
};

}  // namespace wb
