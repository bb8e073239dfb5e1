// The request side of the HTTP layer without a socket: Beast's parser under the server's limits, the checks made
// once a header is in, parse errors mapped to the answers the layer gives itself, and a parsed message turned into
// the HttpRequest handlers see. HttpSession (http_server.cpp) runs these on its socket; parseHttpRequests() runs
// them over bytes in memory, as one connection would read them (tests, the fuzz target tests/fuzz/
// fuzz_http_request.cpp).
#pragma once

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "serve/http_server.h"

namespace wb {

using HttpRequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// A request the layer answers itself, before any handler, and then closes the connection.
struct HttpRefusal {
    int status = 400;
    const char* reason = "";  // counted on /metrics (wb_http_refused_total{reason})
    std::string message;
    std::string code;         // the JSON error body's code
};

/// Header and body limits on a fresh parser.
void applyHttpLimits(HttpRequestParser& parser, const HttpLimits& limits);
/// Once the header is in: too many header lines, a Transfer-Encoding other than chunked, a Content-Encoding
/// other than identity.
std::optional<HttpRefusal> checkRequestHeader(const HttpRequestParser& parser, const HttpLimits& limits);
/// A parse error the client is told about (header or body too large, conflicting framing, malformed HTTP); nullopt
/// for the others (end of stream, socket errors), after which the connection just closes.
std::optional<HttpRefusal> refusalForParseError(const boost::system::error_code& ec, const HttpLimits& limits);
/// The parsed message as handlers see it: method, target, path before '?' percent-decoded, headers in order, the
/// body moved out of `msg`.
HttpRequest toHttpRequest(HttpRequestParser::value_type& msg);

struct HttpParseResult {
    std::vector<HttpRequest> requests;   // complete requests, in order (pipelining)
    std::optional<HttpRefusal> refusal;  // what ended the connection, if the layer refused a request
    bool incomplete = false;             // the bytes end inside a request
    bool closed = false;                 // a parse error the layer answers by closing without a response
};
/// Every request in `bytes` as one connection reads them, up to the first refusal, at most maxRequests.
HttpParseResult parseHttpRequests(std::string_view bytes, const HttpLimits& limits, size_t maxRequests = 64);

}  // namespace wb
