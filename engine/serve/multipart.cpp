#include "serve/multipart.h"

#include <algorithm>
#include <cctype>

namespace wb {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// The value of `key` in a header's ;-separated parameters (quoted or not).
std::string param(std::string_view header, std::string_view key) {
    size_t pos = 0;
    while (pos < header.size()) {
        size_t semi = header.find(';', pos);
        // A quoted value may hold ';': skip to the closing quote.
        size_t q = header.find('"', pos);
        if (q != std::string_view::npos && q < semi) {
            size_t close = header.find('"', q + 1);
            if (close == std::string_view::npos) return {};
            semi = header.find(';', close);
        }
        std::string_view item =
            trim(header.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos));
        const size_t eq = item.find('=');
        if (eq != std::string_view::npos && lower(trim(item.substr(0, eq))) == key) {
            std::string_view v = trim(item.substr(eq + 1));
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            return std::string(v);
        }
        if (semi == std::string_view::npos) break;
        pos = semi + 1;
    }
    return {};
}

}  // namespace

Result<std::vector<FormPart>> parseMultipartForm(std::string_view contentType, std::string_view body, size_t maxParts) {
    if (lower(trim(contentType.substr(0, contentType.find(';')))) != "multipart/form-data")
        return makeError("the body must be multipart/form-data");
    const std::string boundary = param(contentType, "boundary");
    if (boundary.empty() || boundary.size() > 200) return makeError("multipart/form-data without a valid boundary");
    const std::string delim = "--" + boundary;
    std::vector<FormPart> parts;
    size_t pos = body.find(delim);
    if (pos == std::string_view::npos) return makeError("multipart body without its boundary");
    while (true) {
        pos += delim.size();
        if (body.substr(pos, 2) == "--") return parts;  // the closing delimiter
        if (body.substr(pos, 2) != "\r\n") return makeError("malformed multipart delimiter line");
        pos += 2;
        const size_t headEnd = body.find("\r\n\r\n", pos);
        if (headEnd == std::string_view::npos) return makeError("multipart part without the end of its headers");
        FormPart part;
        std::string_view head = body.substr(pos, headEnd - pos);
        while (!head.empty()) {
            const size_t eol = head.find("\r\n");
            const std::string_view line = head.substr(0, eol);
            const size_t colon = line.find(':');
            if (colon != std::string_view::npos) {
                const std::string name = lower(trim(line.substr(0, colon)));
                const std::string_view value = trim(line.substr(colon + 1));
                if (name == "content-disposition") {
                    part.name = param(value, "name");
                    part.filename = param(value, "filename");
                } else if (name == "content-type") {
                    part.contentType = std::string(value);
                }
            }
            if (eol == std::string_view::npos) break;
            head.remove_prefix(eol + 2);
        }
        const size_t dataStart = headEnd + 4;
        const size_t next = body.find("\r\n" + delim, dataStart);
        if (next == std::string_view::npos) return makeError("multipart part without a closing boundary");
        part.data = std::string(body.substr(dataStart, next - dataStart));
        if (part.name.empty()) return makeError("a multipart part without a name");
        if (parts.size() >= maxParts) return makeError("more than " + std::to_string(maxParts) + " multipart parts");
        parts.push_back(std::move(part));
        pos = next + 2;
    }
}

}  // namespace wb
