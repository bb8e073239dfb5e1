// multipart/form-data as POST /v1/audio/transcriptions reads it (serve/multipart.h). The first line of the input
// is the Content-Type header value (boundary included), the rest the body. Seeds: tests/fuzz/seeds/fuzz_multipart.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "serve/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in = wbfuzz::view(data, size);
    const size_t eol = in.find('\n');
    if (eol == std::string_view::npos) return 0;
    const std::string_view body = in.substr(eol + 1);
    auto parts = wb::parseMultipartForm(in.substr(0, eol), body);
    if (!parts) return wbfuzz::note(parts.error().message), 0;
    size_t total = 0;
    for (const auto& p : *parts) {
        if (p.name.empty()) __builtin_trap();
        total += p.data.size();
    }
    if (total > body.size()) __builtin_trap();
    wbfuzz::note("parts: " + std::to_string(parts->size()));
    return 0;
}
