// multipart/form-data bodies (RFC 7578), as OpenAI's /v1/audio/transcriptions takes them: the boundary from the
// Content-Type header, each part's Content-Disposition name and filename, its Content-Type, its bytes. Bounded by
// the body (already limited by the HTTP layer) and a part count; malformed input is an error, never a crash.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace wb {

struct FormPart {
    std::string name;
    std::string filename;     // empty when the part is not a file
    std::string contentType;  // empty when absent
    std::string data;
};

/// Parses `body` given the request's Content-Type header value (multipart/form-data; boundary=...).
Result<std::vector<FormPart>> parseMultipartForm(std::string_view contentType, std::string_view body,
                                                 size_t maxParts = 64);

}  // namespace wb
