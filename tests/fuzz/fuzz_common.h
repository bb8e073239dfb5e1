// Shared by the libFuzzer targets (docs/FUZZING.md): a scratch folder for parsers whose entry point takes a path,
// and small helpers. Each target's LLVMFuzzerTestOneInput must leave nothing behind per input: files it writes
// go into the one scratch folder of its process, overwritten by the next input and removed at exit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace wbfuzz {

/// This process's own folder under TMPDIR (wb-fuzz-<pid>), made on first use and removed at normal exit.
const std::filesystem::path& scratchDir();
/// A sub-folder of scratchDir(), emptied: for entry points that read a model folder.
std::filesystem::path freshFolder(const std::string& name);
/// Writes the bytes to `path`, replacing what was there.
void writeFile(const std::filesystem::path& path, std::string_view bytes);
/// Reads a whole file ("" when absent).
std::string readFile(const std::filesystem::path& path);

/// With WB_FUZZ_VERBOSE=1 in the environment, prints what an input came to (an error, or "ok ..."): to see
/// whether a seed gets past a parser (`WB_FUZZ_VERBOSE=1 build-fuzz/tests/fuzz/fuzz_gguf seed.gguf`).
void note(const std::string& what);

inline std::string_view view(const uint8_t* data, size_t size) {
    return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace wbfuzz
