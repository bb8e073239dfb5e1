#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

namespace wb {

namespace {

Result<DType> mapDtype(const std::string& s) {
    if (s == "F32") return DType::F32;
    if (s == "F16") return DType::F16;
    if (s == "BF16") return DType::BF16;
    if (s == "I8") return DType::I8;
    if (s == "I32") return DType::I32;
    return makeError("unsupported dtype \"" + s + "\" (supported: F32, F16, BF16)");
}

}  // namespace

Result<std::shared_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.error();
    auto f = std::shared_ptr<SafetensorsFile>(new SafetensorsFile());
    f->m_file = *mapped;
    const uint8_t* base = f->m_file->data();
    const size_t size = f->m_file->size();
    if (size < 8) return makeError(path + ": truncated safetensors file: " + std::to_string(size) + " bytes, no header");
    uint64_t headerLen;
    std::memcpy(&headerLen, base, 8);
    if (headerLen > size - 8)
        return makeError(path + ": truncated safetensors file: header length " + std::to_string(headerLen) +
                         " exceeds the file size " + std::to_string(size) + " (or this is not a safetensors file)");
    if (headerLen > (uint64_t(100) << 20)) return makeError(path + ": safetensors header length is implausible");
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(base + 8, base + 8 + headerLen);
    } catch (const std::exception& e) {
        return makeError(path + ": safetensors header is not valid JSON: " + e.what());
    }
    if (!header.is_object()) return makeError(path + ": safetensors header is not a JSON object");
    const uint64_t dataSize = size - 8 - headerLen;
    const uint8_t* data = base + 8 + headerLen;
    for (auto& [name, v] : header.items()) {
        if (name == "__metadata__") {
            if (v.is_object())
                for (auto& [k, mv] : v.items())
                    if (mv.is_string()) f->m_metadata[k] = mv.get<std::string>();
            continue;
        }
        const std::string where = path + ": tensor " + name;
        if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
            return makeError(where + ": header entry lacks dtype, shape or data_offsets");
        if (!v["dtype"].is_string()) return makeError(where + ": dtype is not a string");
        auto dt = mapDtype(v["dtype"].get<std::string>());
        if (!dt) return makeError(where + ": " + dt.error().message);
        TensorInfo t;
        t.name = name;
        t.file = path;
        t.dtype = *dt;
        const auto& shape = v["shape"];
        const auto& offs = v["data_offsets"];
        if (!shape.is_array() || shape.size() > 8) return makeError(where + ": shape is not an array of up to 8 dims");
        __int128 n = 1;
        for (const auto& d : shape) {
            if (!d.is_number_unsigned()) return makeError(where + ": shape has a non-integer dimension");
            // Bounded before the int64 conversion: 2^63 and up would read as negative dims, and the running
            // product must not overflow.
            if (d.get<uint64_t>() > (uint64_t(1) << 40))
                return makeError(where + ": shape dimension " + std::to_string(d.get<uint64_t>()) + " is implausible");
            t.shape.push_back(d.get<int64_t>());
            n *= t.shape.back();
            if (n > __int128(dataSize)) break;
        }
        if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
            return makeError(where + ": data_offsets is not a pair of integers");
        const uint64_t b = offs[0].get<uint64_t>(), e = offs[1].get<uint64_t>();
        if (b > e || e > dataSize)
            return makeError(path + ": truncated file or bad header: tensor " + name + " data_offsets [" +
                             std::to_string(b) + ", " + std::to_string(e) + "] lie outside the " +
                             std::to_string(dataSize) + " data bytes");
        const __int128 want = n * dtypeBlockBytes(t.dtype);
        if (want != __int128(e - b))
            return makeError(where + ": shape " + t.shapeString() + " as " + std::string(dtypeName(t.dtype)) +
                             " needs " + std::to_string(int64_t(want)) + " bytes but data_offsets span " +
                             std::to_string(e - b));
        t.data = data + b;
        t.numBytes = int64_t(e - b);
        f->m_tensors.push_back(std::move(t));
    }
    return f;
}

Result<std::shared_ptr<SafetensorsSet>> SafetensorsSet::openFolder(const std::string& dir) {
    namespace fs = std::filesystem;
    std::vector<std::string> files;
    const fs::path indexPath = fs::path(dir) / "model.safetensors.index.json";
    std::map<std::string, std::string> weightMap;
    std::error_code ec;
    if (fs::exists(indexPath, ec)) {
        std::ifstream in(indexPath);
        nlohmann::json idx;
        try {
            idx = nlohmann::json::parse(in);
        } catch (const std::exception& e) {
            return makeError(indexPath.string() + ": not valid JSON: " + e.what());
        }
        if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
            return makeError(indexPath.string() + ": missing weight_map");
        std::set<std::string> uniq;
        for (auto& [k, v] : idx["weight_map"].items()) {
            if (!v.is_string()) return makeError(indexPath.string() + ": weight_map[" + k + "] is not a file name");
            const std::string fname = v.get<std::string>();
            if (fname.find('/') != std::string::npos || fname.find("..") != std::string::npos)
                return makeError(indexPath.string() + ": weight_map[" + k + "] names a file outside the folder");
            weightMap[k] = fname;
            uniq.insert(fname);
        }
        files.assign(uniq.begin(), uniq.end());
    } else {
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.path().extension() == ".safetensors") files.push_back(e.path().filename().string());
        std::sort(files.begin(), files.end());
        if (ec) return makeError(dir + ": cannot list folder: " + ec.message());
    }
    if (files.empty()) return makeError(dir + ": no *.safetensors files found");
    auto set = std::shared_ptr<SafetensorsSet>(new SafetensorsSet());
    for (const auto& fname : files) {
        auto f = SafetensorsFile::open((fs::path(dir) / fname).string());
        if (!f) return f.error();
        for (const auto& t : (*f)->tensors()) {
            if (!weightMap.empty()) {
                auto it = weightMap.find(t.name);
                if (it == weightMap.end() || it->second != fname) continue;  // index says it lives elsewhere
            }
            if (set->m_tensors.count(t.name))
                return makeError(dir + ": tensor " + t.name + " appears in more than one shard");
            set->m_tensors[t.name] = t;
        }
        set->m_files.push_back(*f);
    }
    for (const auto& [name, fname] : weightMap)
        if (!set->m_tensors.count(name))
            return makeError(indexPath.string() + ": tensor " + name + " is listed for " + fname +
                             " but that file does not contain it");
    return set;
}

const TensorInfo* SafetensorsSet::find(const std::string& name) const {
    auto it = m_tensors.find(name);
    return it == m_tensors.end() ? nullptr : &it->second;
}

}  // namespace wb
