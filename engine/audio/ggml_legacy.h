// whisper.cpp's own model files (ggml-*.bin, and its Silero VAD conversion): the legacy ggml container that
// predates GGUF. After the magic "ggml" (0x67676d6c, little-endian) each model writes its own header; then come
// tensor records until the end of the file: n_dims, name length, ggml type (int32 each), ne[n_dims] (int32,
// innermost first), the name, the data (no alignment). Untrusted input: every read is bounds-checked and a record
// that lies about its size is an error naming the file and the tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb::audio {

inline constexpr uint32_t kGgmlMagic = 0x67676d6c;

/// ggml type ids this reader knows the sizes of.
enum class GgmlType : int32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8 };

struct GgmlTensorRecord {
    std::string name;
    int32_t type = 0;
    std::vector<int64_t> ne;  // innermost first (ggml order); PyTorch's shape reversed
    size_t offset = 0;        // of the data, from the start of the file
    size_t numBytes = 0;

    int64_t numElements() const;
};

/// Bounds-checked little-endian reads over a byte span.
class ByteCursor {
public:
    ByteCursor(std::span<const uint8_t> bytes, std::string what) : m_bytes(bytes), m_what(std::move(what)) {}
    Result<int32_t> i32(const char* field);
    Result<uint32_t> u32(const char* field);
    Result<std::string> string(size_t length, const char* field);
    Result<std::span<const uint8_t>> bytes(size_t length, const char* field);
    size_t pos() const { return m_pos; }
    bool atEnd() const { return m_pos >= m_bytes.size(); }
    const std::string& what() const { return m_what; }

private:
    std::span<const uint8_t> m_bytes;
    std::string m_what;
    size_t m_pos = 0;
};

/// Bytes of `numElements` values of `type`; an error for a type this reader does not know or a count that is not
/// a whole number of blocks.
Result<size_t> ggmlDataSize(int32_t type, int64_t numElements);

/// Reads tensor records from the cursor's position to the end.
Result<std::vector<GgmlTensorRecord>> readGgmlTensorRecords(ByteCursor& cur, size_t maxTensors = 4096);

/// A tensor's values as float (F32 copied, F16 widened); other types are an error naming the tensor.
Result<std::vector<float>> ggmlTensorToFloat(std::span<const uint8_t> file, const GgmlTensorRecord& t);

/// The file's bytes: the whole file read into memory (these models are small: 0.9 MB for Silero, 75 MB for
/// whisper tiny).
Result<std::shared_ptr<const std::vector<uint8_t>>> readWholeFile(const std::string& path, size_t maxBytes);

}  // namespace wb::audio
