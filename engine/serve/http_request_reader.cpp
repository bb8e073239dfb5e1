#include "serve/http_request_reader.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace wb {

namespace http = boost::beast::http;

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

std::string percentDecode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

void applyHttpLimits(HttpRequestParser& parser, const HttpLimits& limits) {
    parser.header_limit(uint32_t(std::min<size_t>(limits.maxHeaderBytes, UINT32_MAX)));
    parser.body_limit(limits.maxBodyBytes);
}

std::optional<HttpRefusal> checkRequestHeader(const HttpRequestParser& parser, const HttpLimits& limits) {
    const auto& req = parser.get();
    size_t count = 0;
    for (auto it = req.begin(); it != req.end(); ++it) ++count;
    if (count > limits.maxHeaderCount)
        return HttpRefusal{431, "too_many_headers",
                           "the request has " + std::to_string(count) + " header lines; the limit is " +
                               std::to_string(limits.maxHeaderCount) + " (wb serve --max-header-count)",
                           "too_many_headers"};
    const auto te = req.find(http::field::transfer_encoding);
    if (te != req.end() && !iequals(std::string_view(te->value().data(), te->value().size()), "chunked"))
        return HttpRefusal{400, "bad_framing", "only 'Transfer-Encoding: chunked' is accepted", "bad_framing"};
    const auto ce = req.find(http::field::content_encoding);
    if (ce != req.end() && !iequals(std::string_view(ce->value().data(), ce->value().size()), "identity"))
        return HttpRefusal{415, "content_encoding",
                           "compressed request bodies (Content-Encoding) are not accepted; send the body as is",
                           "unsupported_content_encoding"};
    return std::nullopt;
}

std::optional<HttpRefusal> refusalForParseError(const boost::system::error_code& ec, const HttpLimits& limits) {
    if (ec == http::error::header_limit)
        return HttpRefusal{431, "header_too_large",
                           "the request header is larger than " + std::to_string(limits.maxHeaderBytes) +
                               " bytes (wb serve --max-header-kb)",
                           "header_too_large"};
    if (ec == http::error::body_limit)
        return HttpRefusal{413, "body_too_large",
                           "the request body is larger than the server's limit of " +
                               std::to_string(limits.maxBodyBytes) + " bytes (wb serve --max-body-mb)",
                           "request_too_large"};
    if (ec == http::error::bad_content_length || ec == http::error::bad_transfer_encoding)
        return HttpRefusal{400, "bad_framing",
                           "conflicting or invalid Content-Length / Transfer-Encoding (" + ec.message() + ")",
                           "bad_framing"};
    if (ec != http::error::end_of_stream && ec != http::error::need_more &&
        ec.category() == http::make_error_code(http::error::bad_method).category())
        return HttpRefusal{400, "bad_request", "bad HTTP request (" + ec.message() + ")", "bad_request"};
    return std::nullopt;
}

HttpRequest toHttpRequest(HttpRequestParser::value_type& msg) {
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    const size_t q = req.target.find('?');
    req.path = percentDecode(std::string_view(req.target).substr(0, q));
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    return req;
}

HttpParseResult parseHttpRequests(std::string_view bytes, const HttpLimits& limits, size_t maxRequests) {
    HttpParseResult out;
    size_t pos = 0;
    while (pos < bytes.size() && out.requests.size() < maxRequests) {
        HttpRequestParser parser;
        applyHttpLimits(parser, limits);
        bool headerChecked = false;
        boost::system::error_code ec;
        // As a session does: the header first (its checks before any body byte is read), then the body.
        while (!parser.is_done()) {
            if (pos >= bytes.size()) {  // the bytes end inside this request (a body shorter than announced)
                out.incomplete = true;
                return out;
            }
            const size_t used = parser.put(boost::asio::buffer(bytes.data() + pos, bytes.size() - pos), ec);
            pos += used;
            if (ec == http::error::need_more) {
                if (pos >= bytes.size() || used == 0) {
                    out.incomplete = true;
                    return out;
                }
                ec = {};
                continue;
            }
            if (ec) {
                if (auto r = refusalForParseError(ec, limits))
                    out.refusal = std::move(r);
                else
                    out.closed = true;
                return out;
            }
            if (parser.is_header_done() && !headerChecked) {
                headerChecked = true;
                if (auto r = checkRequestHeader(parser, limits)) {
                    out.refusal = std::move(r);
                    return out;
                }
            }
            if (used == 0 && !parser.is_done()) {  // no progress without an error: nothing more to read here
                out.incomplete = true;
                return out;
            }
        }
        auto msg = parser.release();
        out.requests.push_back(toHttpRequest(msg));
    }
    return out;
}

}  // namespace wb
