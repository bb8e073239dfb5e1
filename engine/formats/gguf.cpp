#include "formats/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace wb {

std::string TensorInfo::shapeString() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

namespace {

// Hard limits that no real file reaches; they keep a hostile file from making us allocate without bound.
constexpr uint64_t kMaxStringBytes = uint64_t(1) << 30;
constexpr uint64_t kMaxArrayElems = uint64_t(1) << 28;
constexpr uint64_t kMaxTensors = uint64_t(1) << 20;
constexpr uint32_t kMaxDims = 4;

class Reader {
public:
    Reader(const uint8_t* data, size_t size, const std::string& path) : m_data(data), m_size(size), m_path(path) {}

    size_t pos() const { return m_pos; }
    size_t remaining() const { return m_size - m_pos; }

    Result<void> need(uint64_t n, const std::string& what) {
        if (n > m_size - m_pos)
            return makeError(m_path + ": truncated file: " + what + " needs " + std::to_string(n) +
                             " bytes at offset " + std::to_string(m_pos) + " but the file has " +
                             std::to_string(m_size) + " bytes");
        return {};
    }

    template <typename T>
    Result<T> read(const std::string& what) {
        WB_TRY(need(sizeof(T), what));
        T v;
        std::memcpy(&v, m_data + m_pos, sizeof(T));
        m_pos += sizeof(T);
        return v;
    }

    Result<std::string> readString(const std::string& what) {
        auto len = read<uint64_t>(what + " (string length)");
        if (!len) return len.error();
        if (*len > kMaxStringBytes)
            return makeError(m_path + ": " + what + ": string length " + std::to_string(*len) + " is implausible");
        WB_TRY(need(*len, what));
        std::string s(reinterpret_cast<const char*>(m_data + m_pos), size_t(*len));
        m_pos += size_t(*len);
        return s;
    }

private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos = 0;
    const std::string& m_path;
};

Result<double> readNumber(Reader& r, GgufType t, const std::string& what) {
    switch (t) {
        case GgufType::U8: { auto v = r.read<uint8_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::I8: { auto v = r.read<int8_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::U16: { auto v = r.read<uint16_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::I16: { auto v = r.read<int16_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::U32: { auto v = r.read<uint32_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::I32: { auto v = r.read<int32_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::F32: { auto v = r.read<float>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::U64: { auto v = r.read<uint64_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::I64: { auto v = r.read<int64_t>(what); if (!v) return v.error(); return double(*v); }
        case GgufType::F64: { auto v = r.read<double>(what); if (!v) return v.error(); return *v; }
        case GgufType::Bool: { auto v = r.read<uint8_t>(what); if (!v) return v.error(); return double(*v != 0); }
        default: break;
    }
    return makeError("not a number type");
}

bool isNumberType(GgufType t) {
    return t != GgufType::String && t != GgufType::Array && uint32_t(t) <= uint32_t(GgufType::F64);
}

Result<DType> mapTensorType(uint32_t t) {
    switch (t) {
        case 0: return DType::F32;
        case 1: return DType::F16;
        case 2: return DType::Q4_0;
        case 6: return DType::Q5_0;
        case 8: return DType::Q8_0;
        case 12: return DType::Q4_K;
        case 14: return DType::Q6_K;
        case 26: return DType::I32;
        case 30: return DType::BF16;
        default: break;
    }
    return makeError("unsupported tensor type " + std::to_string(t) +
                     " (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K, I32)");
}

}  // namespace

Result<std::shared_ptr<GgufFile>> GgufFile::open(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return mapped.error();
    auto file = std::shared_ptr<GgufFile>(new GgufFile());
    file->m_file = *mapped;
    const uint8_t* base = file->m_file->data();
    const size_t size = file->m_file->size();
    Reader r(base, size, path);

    auto magic = r.read<uint32_t>("magic");
    if (!magic) return makeError(path + ": not a GGUF file: too short for the magic (" + std::to_string(size) + " bytes)");
    if (std::memcmp(base, "GGUF", 4) != 0) {
        std::string got;
        for (int i = 0; i < 4; ++i) got += (base[i] >= 32 && base[i] < 127) ? char(base[i]) : '?';
        return makeError(path + ": not a GGUF file: magic is \"" + got + "\", expected \"GGUF\"");
    }
    auto version = r.read<uint32_t>("version");
    if (!version) return version.error();
    if (*version != 2 && *version != 3)
        return makeError(path + ": GGUF version " + std::to_string(*version) + " is not supported (2 and 3 are)");
    file->m_version = *version;
    auto nTensors = r.read<uint64_t>("tensor_count");
    if (!nTensors) return nTensors.error();
    auto nKv = r.read<uint64_t>("metadata_kv_count");
    if (!nKv) return nKv.error();
    if (*nTensors > kMaxTensors) return makeError(path + ": tensor_count " + std::to_string(*nTensors) + " is implausible");
    if (*nKv > kMaxTensors) return makeError(path + ": metadata_kv_count " + std::to_string(*nKv) + " is implausible");

    for (uint64_t i = 0; i < *nKv; ++i) {
        auto key = r.readString("metadata key #" + std::to_string(i));
        if (!key) return key.error();
        auto type = r.read<uint32_t>("type of " + *key);
        if (!type) return type.error();
        GgufValue v;
        v.type = GgufType(*type);
        if (v.type == GgufType::String) {
            auto s = r.readString("value of " + *key);
            if (!s) return s.error();
            v.str = std::move(*s);
        } else if (v.type == GgufType::Array) {
            auto et = r.read<uint32_t>("element type of " + *key);
            if (!et) return et.error();
            auto n = r.read<uint64_t>("length of " + *key);
            if (!n) return n.error();
            if (*n > kMaxArrayElems)
                return makeError(path + ": metadata " + *key + ": array length " + std::to_string(*n) + " is implausible");
            v.elemType = GgufType(*et);
            // Reserve no more elements than the rest of the file can hold (a string takes at least its 8-byte
            // length, a number at least one byte): a hostile length must not allocate gigabytes up front.
            if (v.elemType == GgufType::String) {
                v.strings.reserve(size_t(std::min<uint64_t>(*n, r.remaining() / 8)));
                for (uint64_t j = 0; j < *n; ++j) {
                    auto s = r.readString(*key + "[" + std::to_string(j) + "]");
                    if (!s) return s.error();
                    v.strings.push_back(std::move(*s));
                }
            } else if (isNumberType(v.elemType)) {
                v.numbers.reserve(size_t(std::min<uint64_t>(*n, r.remaining())));
                for (uint64_t j = 0; j < *n; ++j) {
                    auto x = readNumber(r, v.elemType, *key + "[" + std::to_string(j) + "]");
                    if (!x) return x.error();
                    v.numbers.push_back(*x);
                }
            } else {
                return makeError(path + ": metadata " + *key + ": unsupported array element type " + std::to_string(*et));
            }
        } else if (isNumberType(v.type)) {
            auto x = readNumber(r, v.type, "value of " + *key);
            if (!x) return x.error();
            v.num = *x;
            v.flag = *x != 0;
        } else {
            return makeError(path + ": metadata " + *key + ": unknown value type " + std::to_string(*type));
        }
        file->m_kv[*key] = std::move(v);
    }

    struct Pending {
        uint64_t offset;
    };
    std::vector<Pending> offsets;
    for (uint64_t i = 0; i < *nTensors; ++i) {
        auto name = r.readString("tensor #" + std::to_string(i) + " name");
        if (!name) return name.error();
        auto nDims = r.read<uint32_t>("dimension count of tensor " + *name);
        if (!nDims) return nDims.error();
        if (*nDims == 0 || *nDims > kMaxDims)
            return makeError(path + ": tensor " + *name + ": " + std::to_string(*nDims) + " dimensions (1 to 4 allowed)");
        TensorInfo t;
        t.name = *name;
        t.file = path;
        std::vector<int64_t> ne;
        for (uint32_t d = 0; d < *nDims; ++d) {
            auto dim = r.read<uint64_t>("dimension " + std::to_string(d) + " of tensor " + *name);
            if (!dim) return dim.error();
            if (*dim == 0 || *dim > (uint64_t(1) << 40))
                return makeError(path + ": tensor " + *name + ": dimension " + std::to_string(d) + " is " +
                                 std::to_string(*dim));
            ne.push_back(int64_t(*dim));
        }
        t.shape.assign(ne.rbegin(), ne.rend());
        auto type = r.read<uint32_t>("type of tensor " + *name);
        if (!type) return type.error();
        auto dt = mapTensorType(*type);
        if (!dt) return makeError(path + ": tensor " + *name + ": " + dt.error().message);
        t.dtype = *dt;
        auto off = r.read<uint64_t>("offset of tensor " + *name);
        if (!off) return off.error();
        const int64_t block = dtypeBlockSize(t.dtype);
        if (ne[0] % block != 0)
            return makeError(path + ": tensor " + *name + ": row length " + std::to_string(ne[0]) +
                             " is not a multiple of the " + std::string(dtypeName(t.dtype)) + " block size " +
                             std::to_string(block));
        // Overflow-safe size: every dim is <= 2^40 and there are at most 4, so check step by step.
        __int128 bytes = __int128(ne[0]) / block * dtypeBlockBytes(t.dtype);
        for (size_t d = 1; d < ne.size(); ++d) {
            bytes *= ne[d];
            if (bytes > __int128(size)) break;
        }
        if (bytes > __int128(size))
            return makeError(path + ": truncated file or bad shape: tensor " + *name + " " + t.shapeString() +
                             " needs more bytes than the whole file has (" + std::to_string(size) + ")");
        t.numBytes = int64_t(bytes);
        if (file->m_tensorIndex.count(t.name))
            return makeError(path + ": tensor " + t.name + " appears twice");
        file->m_tensorIndex[t.name] = file->m_tensors.size();
        file->m_tensors.push_back(std::move(t));
        offsets.push_back({*off});
    }

    uint64_t alignment = 32;
    if (auto a = file->getInt("general.alignment")) {
        if (*a <= 0 || (*a & (*a - 1)) != 0)
            return makeError(path + ": general.alignment " + std::to_string(*a) + " is not a power of two");
        alignment = uint64_t(*a);
    }
    const uint64_t dataStart = (r.pos() + alignment - 1) / alignment * alignment;
    for (size_t i = 0; i < file->m_tensors.size(); ++i) {
        TensorInfo& t = file->m_tensors[i];
        const uint64_t off = offsets[i].offset;
        if (off % alignment != 0)
            return makeError(path + ": tensor " + t.name + ": offset " + std::to_string(off) + " is not aligned to " +
                             std::to_string(alignment));
        if (dataStart > size || off > size - dataStart || uint64_t(t.numBytes) > size - dataStart - off)
            return makeError(path + ": truncated file: tensor " + t.name + " " + t.shapeString() + " (" +
                             std::string(dtypeName(t.dtype)) + ", " + std::to_string(t.numBytes) +
                             " bytes at data offset " + std::to_string(off) + ") extends past the end of the file (" +
                             std::to_string(size) + " bytes)");
        t.data = base + dataStart + off;
    }
    return file;
}

const TensorInfo* GgufFile::findTensor(const std::string& name) const {
    auto it = m_tensorIndex.find(name);
    return it == m_tensorIndex.end() ? nullptr : &m_tensors[it->second];
}

const GgufValue* GgufFile::find(const std::string& key) const {
    auto it = m_kv.find(key);
    return it == m_kv.end() ? nullptr : &it->second;
}

std::optional<std::string> GgufFile::getString(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || v->type != GgufType::String) return std::nullopt;
    return v->str;
}

std::optional<int64_t> GgufFile::getInt(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || !isNumberType(v->type) || std::isnan(v->num)) return std::nullopt;
    // Saturated: converting a double outside int64's range is undefined, and a huge value must still read as
    // huge (so that the caller's range check names it).
    if (v->num >= 9223372036854775807.0) return std::numeric_limits<int64_t>::max();
    if (v->num <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
    return int64_t(v->num);
}

std::optional<double> GgufFile::getFloat(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || !isNumberType(v->type)) return std::nullopt;
    return v->num;
}

std::optional<bool> GgufFile::getBool(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || !isNumberType(v->type)) return std::nullopt;
    return v->num != 0;
}

const std::vector<std::string>* GgufFile::getStringArray(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || v->type != GgufType::Array || v->elemType != GgufType::String) return nullptr;
    return &v->strings;
}

const std::vector<double>* GgufFile::getNumberArray(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v || v->type != GgufType::Array || !isNumberType(v->elemType)) return nullptr;
    return &v->numbers;
}

}  // namespace wb
