#include "formats/safetensors_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

namespace wb {

std::string safetensorsDtypeName(DType t) {
    switch (t) {
        case DType::F32:
            return "F32";
        case DType::F16:
            return "F16";
        case DType::BF16:
            return "BF16";
        case DType::I32:
            return "I32";
        case DType::I8:
            return "I8";  // plain int8 values; our per-row scales would have to be a tensor of their own
        default:
            return {};
    }
}

namespace {

struct FileCloser {
    void operator()(std::FILE* f) const {
        if (f) std::fclose(f);
    }
};

std::string shardName(int i, int n) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "model-%05d-of-%05d.safetensors", i, n);
    return buf;
}

Result<void> writeTextFile(const std::string& path, const std::string& text) {
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
    if (!f) return makeError("safetensors writer: cannot create " + path + ": " + std::strerror(errno));
    if (std::fwrite(text.data(), 1, text.size(), f.get()) != text.size() || std::fclose(f.release()) != 0)
        return makeError("safetensors writer: write failed: " + path);
    return {};
}

}  // namespace

SafetensorsWriter::SafetensorsWriter() {
    m_metadata["format"] = "pt";
}

uint64_t SafetensorsWriter::totalBytes() const {
    uint64_t n = 0;
    for (const auto& t : m_tensors) n += t.numBytes;
    return n;
}

Result<void> SafetensorsWriter::checkTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                            size_t* numBytes) const {
    if (name.empty() || name == "__metadata__")
        return makeError("safetensors writer: invalid tensor name '" + name + "'");
    if (safetensorsDtypeName(dtype).empty())
        return makeError("safetensors writer: tensor " + name + ": dtype " + std::string(dtypeName(dtype)) +
                         " cannot be stored in safetensors");
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) return makeError("safetensors writer: tensor " + name + ": negative dimension");
        n *= d;
    }
    for (const auto& t : m_tensors)
        if (t.name == name) return makeError("safetensors writer: duplicate tensor " + name);
    *numBytes = size_t(n * dtypeBlockBytes(dtype));
    return {};
}

Result<void> SafetensorsWriter::addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                          std::vector<uint8_t> bytes) {
    size_t n = 0;
    WB_TRY(checkTensor(name, dtype, shape, &n));
    if (bytes.size() != n)
        return makeError("safetensors writer: tensor " + name + ": got " + std::to_string(bytes.size()) +
                         " bytes, its shape and dtype need " + std::to_string(n));
    m_tensors.push_back({name, dtype, std::move(shape), n, std::move(bytes), {}});
    return {};
}

Result<void> SafetensorsWriter::addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                          TensorProducer producer) {
    size_t n = 0;
    WB_TRY(checkTensor(name, dtype, shape, &n));
    if (!producer) return makeError("safetensors writer: tensor " + name + ": no producer");
    m_tensors.push_back({name, dtype, std::move(shape), n, {}, std::move(producer)});
    return {};
}

Result<void> SafetensorsWriter::writeRange(const std::string& path, size_t begin, size_t end) const {
    // ordered_json keeps __metadata__ first and the tensors in file order, which makes headers easy to eyeball.
    nlohmann::ordered_json header;
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : m_metadata) meta[k] = v;
    header["__metadata__"] = meta;
    uint64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
        const auto& t = m_tensors[i];
        header[t.name] = {{"dtype", safetensorsDtypeName(t.dtype)},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + t.numBytes}}};
        offset += t.numBytes;
    }
    std::string text = header.dump();
    // Padding the header to 8 bytes keeps every tensor's data 8-byte aligned when the file is mapped.
    text.append((8 - text.size() % 8) % 8, ' ');

    const std::string tmp = path + ".partial";
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
    if (!f) return makeError("safetensors writer: cannot create " + tmp + ": " + std::strerror(errno));
    auto fail = [&](const std::string& what) -> Error {
        f.reset();
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        return makeError("safetensors writer: " + path + ": " + what);
    };
    uint8_t len[8];
    const uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(n >> (8 * i));
    if (std::fwrite(len, 1, 8, f.get()) != 8 || std::fwrite(text.data(), 1, text.size(), f.get()) != text.size())
        return fail("write failed (header)");
    std::vector<uint8_t> scratch;
    for (size_t i = begin; i < end; ++i) {
        const auto& t = m_tensors[i];
        const uint8_t* data = t.bytes.data();
        if (t.producer) {
            scratch.assign(t.numBytes, 0);
            auto r = t.producer(scratch.data(), t.numBytes);
            if (!r) return fail("tensor " + t.name + ": " + r.error().message);
            data = scratch.data();
        }
        if (t.numBytes && std::fwrite(data, 1, t.numBytes, f.get()) != t.numBytes)
            return fail("write failed (tensor " + t.name + ")");
    }
    if (std::fclose(f.release()) != 0) return fail("write failed (close)");
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) return fail("cannot rename " + tmp + ": " + ec.message());
    return {};
}

Result<void> SafetensorsWriter::write(const std::string& path) const {
    return writeRange(path, 0, m_tensors.size());
}

Result<void> SafetensorsWriter::writeSharded(const std::string& dir, int shards) const {
    if (shards < 1) return makeError("safetensors writer: shard count " + std::to_string(shards) + " must be >= 1");
    if (size_t(shards) > m_tensors.size() && shards > 1)
        return makeError("safetensors writer: " + std::to_string(shards) + " shards for only " +
                         std::to_string(m_tensors.size()) + " tensors");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return makeError("safetensors writer: cannot create " + dir + ": " + ec.message());
    if (shards == 1) return writeRange(dir + "/model.safetensors", 0, m_tensors.size());

    // Split in order at the points nearest to equal byte counts, leaving at least one tensor per shard.
    const uint64_t total = totalBytes();
    const size_t count = m_tensors.size();
    std::vector<size_t> bounds = {0};
    uint64_t cum = 0;
    size_t idx = 0;
    for (int s = 0; s < shards; ++s) {
        const size_t mustLeave = size_t(shards - s - 1);
        const size_t start = idx;
        const long double goal = (long double)total * (s + 1) / shards;
        while (idx < count - mustLeave) {
            const uint64_t sz = m_tensors[idx].numBytes;
            if (idx > start && s + 1 < shards && (long double)cum + sz / 2.0L > goal) break;
            cum += sz;
            ++idx;
        }
        bounds.push_back(idx);
    }

    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total}};
    nlohmann::ordered_json weightMap = nlohmann::ordered_json::object();
    for (int s = 0; s < shards; ++s) {
        const std::string name = shardName(s + 1, shards);
        WB_TRY(writeRange(dir + "/" + name, bounds[size_t(s)], bounds[size_t(s) + 1]));
        for (size_t i = bounds[size_t(s)]; i < bounds[size_t(s) + 1]; ++i) weightMap[m_tensors[i].name] = name;
    }
    index["weight_map"] = weightMap;
    return writeTextFile(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace wb
