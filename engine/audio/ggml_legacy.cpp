#include "audio/ggml_legacy.h"

#include <cstring>
#include <fstream>

#include "core/dtype.h"

namespace wb::audio {

int64_t GgmlTensorRecord::numElements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
}

Result<int32_t> ByteCursor::i32(const char* field) {
    if (m_bytes.size() - m_pos < 4 || m_pos > m_bytes.size())
        return makeError(m_what + ": truncated at " + field + " (offset " + std::to_string(m_pos) + ")");
    int32_t v;
    std::memcpy(&v, m_bytes.data() + m_pos, 4);
    m_pos += 4;
    return v;
}

Result<uint32_t> ByteCursor::u32(const char* field) {
    auto v = i32(field);
    if (!v) return v.error();
    return uint32_t(*v);
}

Result<std::span<const uint8_t>> ByteCursor::bytes(size_t length, const char* field) {
    if (m_pos > m_bytes.size() || m_bytes.size() - m_pos < length)
        return makeError(m_what + ": truncated in " + field + " (offset " + std::to_string(m_pos) + ", " +
                         std::to_string(length) + " bytes wanted)");
    auto s = m_bytes.subspan(m_pos, length);
    m_pos += length;
    return s;
}

Result<std::string> ByteCursor::string(size_t length, const char* field) {
    auto b = bytes(length, field);
    if (!b) return b.error();
    return std::string(reinterpret_cast<const char*>(b->data()), b->size());
}

Result<size_t> ggmlDataSize(int32_t type, int64_t numElements) {
    if (numElements < 0) return makeError("negative element count");
    size_t blockElems = 1, blockBytes = 0;
    switch (GgmlType(type)) {
        case GgmlType::F32:
            blockBytes = 4;
            break;
        case GgmlType::F16:
            blockBytes = 2;
            break;
        case GgmlType::Q4_0:
            blockElems = 32, blockBytes = 18;
            break;
        case GgmlType::Q4_1:
            blockElems = 32, blockBytes = 20;
            break;
        case GgmlType::Q5_0:
            blockElems = 32, blockBytes = 22;
            break;
        case GgmlType::Q5_1:
            blockElems = 32, blockBytes = 24;
            break;
        case GgmlType::Q8_0:
            blockElems = 32, blockBytes = 34;
            break;
        default:
            return makeError("unsupported ggml type " + std::to_string(type));
    }
    if (size_t(numElements) % blockElems != 0)
        return makeError(std::to_string(numElements) + " elements is not a whole number of blocks");
    return size_t(numElements) / blockElems * blockBytes;
}

Result<std::vector<GgmlTensorRecord>> readGgmlTensorRecords(ByteCursor& cur, size_t maxTensors) {
    std::vector<GgmlTensorRecord> out;
    while (!cur.atEnd()) {
        if (out.size() >= maxTensors)
            return makeError(cur.what() + ": more than " + std::to_string(maxTensors) + " tensors");
        auto nDims = cur.i32("tensor n_dims");
        if (!nDims) return nDims.error();
        auto nameLen = cur.i32("tensor name length");
        if (!nameLen) return nameLen.error();
        auto type = cur.i32("tensor type");
        if (!type) return type.error();
        if (*nDims < 0 || *nDims > 4)
            return makeError(cur.what() + ": tensor record " + std::to_string(out.size()) + " has " +
                             std::to_string(*nDims) + " dimensions (0 to 4)");
        if (*nameLen < 1 || *nameLen > 512)
            return makeError(cur.what() + ": tensor record " + std::to_string(out.size()) + " has a name of " +
                             std::to_string(*nameLen) + " bytes");
        GgmlTensorRecord t;
        t.type = *type;
        int64_t n = 1;
        for (int d = 0; d < *nDims; ++d) {
            auto e = cur.i32("tensor shape");
            if (!e) return e.error();
            if (*e < 1 || *e > (1 << 24))
                return makeError(cur.what() + ": tensor record " + std::to_string(out.size()) + " has dimension " +
                                 std::to_string(*e));
            t.ne.push_back(*e);
            n *= *e;
            if (n > (int64_t(1) << 34)) return makeError(cur.what() + ": a tensor of more than 2^34 elements");
        }
        auto name = cur.string(size_t(*nameLen), "tensor name");
        if (!name) return name.error();
        t.name = std::move(*name);
        auto size = ggmlDataSize(t.type, n);
        if (!size) return makeError(cur.what() + ": tensor " + t.name + ": " + size.error().message);
        t.numBytes = *size;
        t.offset = cur.pos();
        auto data = cur.bytes(t.numBytes, ("data of " + t.name).c_str());
        if (!data) return data.error();
        out.push_back(std::move(t));
    }
    return out;
}

Result<std::vector<float>> ggmlTensorToFloat(std::span<const uint8_t> file, const GgmlTensorRecord& t) {
    if (t.offset > file.size() || file.size() - t.offset < t.numBytes) return makeError(t.name + ": outside the file");
    const uint8_t* p = file.data() + t.offset;
    const size_t n = size_t(t.numElements());
    std::vector<float> out(n);
    if (t.type == int32_t(GgmlType::F32)) {
        std::memcpy(out.data(), p, n * 4);
    } else if (t.type == int32_t(GgmlType::F16)) {
        for (size_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            out[i] = fp16ToFp32(h);
        }
    } else {
        return makeError(t.name + ": ggml type " + std::to_string(t.type) + " where F32 or F16 is expected");
    }
    return out;
}

Result<std::shared_ptr<const std::vector<uint8_t>>> readWholeFile(const std::string& path, size_t maxBytes) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) return makeError(path + ": cannot open the file");
    const std::streamoff size = in.tellg();
    if (size < 0) return makeError(path + ": cannot read the file");
    if (size_t(size) > maxBytes) return makeError(path + ": larger than " + std::to_string(maxBytes) + " bytes");
    auto bytes = std::make_shared<std::vector<uint8_t>>(size_t(size));
    in.seekg(0);
    if (size > 0 && !in.read(reinterpret_cast<char*>(bytes->data()), size))
        return makeError(path + ": cannot read the file");
    return std::shared_ptr<const std::vector<uint8_t>>(std::move(bytes));
}

}  // namespace wb::audio
