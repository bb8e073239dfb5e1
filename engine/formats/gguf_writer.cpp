#include "formats/gguf_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace wb {

int ggmlTypeOf(DType t) {
    switch (t) {
        case DType::F32:
            return 0;
        case DType::F16:
            return 1;
        case DType::Q4_0:
            return 2;
        case DType::Q5_0:
            return 6;
        case DType::Q8_0:
            return 8;
        case DType::Q4_K:
            return 12;
        case DType::Q6_K:
            return 14;
        case DType::I32:
            return 26;
        case DType::BF16:
            return 30;
        case DType::I8:
            return -1;  // ours carries per-row scales beside the data; GGML's I8 does not
    }
    return -1;
}

namespace {

bool isNumeric(GgufType t) {
    return t != GgufType::String && t != GgufType::Array;
}

// Appends little-endian scalars and GGUF strings to a byte buffer; the header is small enough to build whole.
class Buffer {
public:
    template <typename T>
    void put(T v) {
        const size_t at = m_bytes.size();
        m_bytes.resize(at + sizeof(T));
        std::memcpy(m_bytes.data() + at, &v, sizeof(T));
    }
    void putString(const std::string& s) {
        put<uint64_t>(s.size());
        m_bytes.insert(m_bytes.end(), s.begin(), s.end());
    }
    void putNumber(GgufType t, double v) {
        switch (t) {
            case GgufType::U8:
                put<uint8_t>(uint8_t(v));
                break;
            case GgufType::I8:
                put<int8_t>(int8_t(v));
                break;
            case GgufType::U16:
                put<uint16_t>(uint16_t(v));
                break;
            case GgufType::I16:
                put<int16_t>(int16_t(v));
                break;
            case GgufType::U32:
                put<uint32_t>(uint32_t(v));
                break;
            case GgufType::I32:
                put<int32_t>(int32_t(v));
                break;
            case GgufType::F32:
                put<float>(float(v));
                break;
            case GgufType::Bool:
                put<uint8_t>(v != 0 ? 1 : 0);
                break;
            case GgufType::U64:
                put<uint64_t>(uint64_t(v));
                break;
            case GgufType::I64:
                put<int64_t>(int64_t(v));
                break;
            case GgufType::F64:
                put<double>(v);
                break;
            default:
                break;
        }
    }
    void padTo(size_t alignment) {
        const size_t rem = m_bytes.size() % alignment;
        if (rem) m_bytes.resize(m_bytes.size() + alignment - rem, 0);
    }
    size_t size() const { return m_bytes.size(); }
    const std::vector<uint8_t>& bytes() const { return m_bytes; }

private:
    std::vector<uint8_t> m_bytes;
};

struct FileCloser {
    void operator()(std::FILE* f) const {
        if (f) std::fclose(f);
    }
};

}  // namespace

GgufWriter::GgufWriter() {
    setU32("general.alignment", m_alignment);
}

void GgufWriter::set(const std::string& key, GgufValue value) {
    for (auto& kv : m_kv) {
        if (kv.first == key) {
            kv.second = std::move(value);
            return;
        }
    }
    m_kv.emplace_back(key, std::move(value));
}

void GgufWriter::setString(const std::string& key, std::string v) {
    GgufValue g;
    g.type = GgufType::String;
    g.str = std::move(v);
    set(key, std::move(g));
}

void GgufWriter::setBool(const std::string& key, bool v) {
    GgufValue g;
    g.type = GgufType::Bool;
    g.flag = v;
    g.num = v ? 1 : 0;
    set(key, std::move(g));
}

void GgufWriter::setNumber(const std::string& key, GgufType type, double v) {
    GgufValue g;
    g.type = type;
    g.num = v;
    g.flag = v != 0;
    set(key, std::move(g));
}

void GgufWriter::setStringArray(const std::string& key, std::vector<std::string> v) {
    GgufValue g;
    g.type = GgufType::Array;
    g.elemType = GgufType::String;
    g.strings = std::move(v);
    set(key, std::move(g));
}

void GgufWriter::setNumberArray(const std::string& key, GgufType elemType, std::vector<double> v) {
    GgufValue g;
    g.type = GgufType::Array;
    g.elemType = elemType;
    g.numbers = std::move(v);
    set(key, std::move(g));
}

void GgufWriter::setAlignment(uint32_t alignment) {
    m_alignment = alignment;
    setU32("general.alignment", alignment);
}

Result<void> GgufWriter::checkTensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                     size_t* numBytes) const {
    if (ggmlTypeOf(dtype) < 0)
        return makeError("gguf writer: tensor " + name + ": dtype " + std::string(dtypeName(dtype)) +
                         " has no GGUF type");
    if (shape.empty() || shape.size() > 4)
        return makeError("gguf writer: tensor " + name + ": GGUF tensors have 1 to 4 dimensions");
    for (int64_t d : shape)
        if (d <= 0) return makeError("gguf writer: tensor " + name + ": dimension " + std::to_string(d));
    for (const auto& t : m_tensors)
        if (t.name == name) return makeError("gguf writer: duplicate tensor " + name);
    const int64_t cols = shape.back();
    if (cols % dtypeBlockSize(dtype) != 0)
        return makeError("gguf writer: tensor " + name + ": row of " + std::to_string(cols) + " values is not a " +
                         "multiple of the " + std::string(dtypeName(dtype)) + " block size " +
                         std::to_string(dtypeBlockSize(dtype)));
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
    *numBytes = size_t(rows * dtypeRowBytes(dtype, cols));
    return {};
}

Result<void> GgufWriter::addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                   std::vector<uint8_t> bytes) {
    size_t n = 0;
    WB_TRY(checkTensor(name, dtype, shape, &n));
    if (bytes.size() != n)
        return makeError("gguf writer: tensor " + name + ": got " + std::to_string(bytes.size()) +
                         " bytes, its shape and dtype need " + std::to_string(n));
    m_tensors.push_back({name, dtype, std::move(shape), n, std::move(bytes), {}});
    return {};
}

Result<void> GgufWriter::addTensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                   TensorProducer producer) {
    size_t n = 0;
    WB_TRY(checkTensor(name, dtype, shape, &n));
    if (!producer) return makeError("gguf writer: tensor " + name + ": no producer");
    m_tensors.push_back({name, dtype, std::move(shape), n, {}, std::move(producer)});
    return {};
}

Result<void> GgufWriter::write(const std::string& path) const {
    if (m_alignment == 0 || (m_alignment & (m_alignment - 1)) != 0)
        return makeError("gguf writer: alignment " + std::to_string(m_alignment) + " is not a power of two");

    Buffer h;
    h.put<uint32_t>(0x46554747u);  // "GGUF"
    h.put<uint32_t>(3);
    h.put<uint64_t>(m_tensors.size());
    h.put<uint64_t>(m_kv.size());
    for (const auto& [key, v] : m_kv) {
        h.putString(key);
        h.put<uint32_t>(uint32_t(v.type));
        if (v.type == GgufType::String) {
            h.putString(v.str);
        } else if (v.type == GgufType::Array) {
            if (v.elemType == GgufType::Array)
                return makeError("gguf writer: " + key + ": arrays of arrays are not supported");
            h.put<uint32_t>(uint32_t(v.elemType));
            if (v.elemType == GgufType::String) {
                h.put<uint64_t>(v.strings.size());
                for (const auto& s : v.strings) h.putString(s);
            } else {
                h.put<uint64_t>(v.numbers.size());
                for (double x : v.numbers) h.putNumber(v.elemType, x);
            }
        } else if (v.type == GgufType::Bool) {
            h.put<uint8_t>(v.flag || v.num != 0 ? 1 : 0);
        } else if (isNumeric(v.type)) {
            h.putNumber(v.type, v.num);
        } else {
            return makeError("gguf writer: " + key + ": unknown value type " + std::to_string(uint32_t(v.type)));
        }
    }
    uint64_t offset = 0;
    for (const auto& t : m_tensors) {
        h.putString(t.name);
        h.put<uint32_t>(uint32_t(t.shape.size()));
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) h.put<uint64_t>(uint64_t(*it));
        h.put<uint32_t>(uint32_t(ggmlTypeOf(t.dtype)));
        h.put<uint64_t>(offset);
        offset += (t.numBytes + m_alignment - 1) / m_alignment * m_alignment;
    }
    h.padTo(m_alignment);

    const std::string tmp = path + ".partial";
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "wb"));
    if (!f) return makeError("gguf writer: cannot create " + tmp + ": " + std::strerror(errno));
    auto fail = [&](const std::string& what) -> Error {
        f.reset();
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        return makeError("gguf writer: " + path + ": " + what);
    };
    if (std::fwrite(h.bytes().data(), 1, h.size(), f.get()) != h.size()) return fail("write failed (header)");

    std::vector<uint8_t> scratch;
    static const uint8_t zeros[256] = {};
    for (const auto& t : m_tensors) {
        const uint8_t* data = t.bytes.data();
        if (t.producer) {
            scratch.assign(t.numBytes, 0);
            auto r = t.producer(scratch.data(), t.numBytes);
            if (!r) return fail("tensor " + t.name + ": " + r.error().message);
            data = scratch.data();
        }
        if (std::fwrite(data, 1, t.numBytes, f.get()) != t.numBytes)
            return fail("write failed (tensor " + t.name + ")");
        size_t pad = (m_alignment - t.numBytes % m_alignment) % m_alignment;
        while (pad > 0) {
            const size_t n = std::min(pad, sizeof(zeros));
            if (std::fwrite(zeros, 1, n, f.get()) != n) return fail("write failed (padding)");
            pad -= n;
        }
    }
    // fclose reports what buffered writes could not (a full disk, typically).
    if (std::fclose(f.release()) != 0) return fail("write failed (close)");
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) return fail("cannot rename " + tmp + ": " + ec.message());
    return {};
}

}  // namespace wb
