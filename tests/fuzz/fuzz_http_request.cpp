// The HTTP side of `wb serve` without a socket: the bytes a client sends on one connection, read as the server's
// sessions read them (parseHttpRequests: Beast's parser under the server's limits, pipelined requests, the header
// checks, refusals), then what the OpenAI handler does with each request before the engine: the API key check,
// the route, the log line and error bodies (which carry the path: invalid UTF-8 there once aborted the process),
// the JSON body and the chat/completions mapping. Limits are the defaults except the body (16 KiB, so that the
// body limit is reachable by inputs of -max_len). Seeds: tests/fuzz/seeds/fuzz_http_request; dictionary
// tests/fuzz/dict/http.dict.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_common.h"
#include "serve/http_request_reader.h"
#include "serve/openai_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    wb::HttpLimits limits;
    limits.maxBodyBytes = size_t(16) << 10;
    const wb::HttpParseResult r = wb::parseHttpRequests(wbfuzz::view(data, size), limits);
    if (r.refusal) {
        const auto& f = *r.refusal;
        if (f.status < 400 || f.status > 599 || f.code.empty()) __builtin_trap();
        (void)wb::apiErrorBody({f.status, f.message, "invalid_request_error", "", f.code});
    }
    for (const wb::HttpRequest& req : r.requests) {
        (void)wb::sanitizeUtf8(req.target);  // the --log-requests line
        const std::string auth = req.header("Authorization");
        (void)auth.compare(0, 7, "Bearer ");
        const bool chat = req.path == "/v1/chat/completions" && req.method == "POST";
        const bool completion = req.path == "/v1/completions" && req.method == "POST";
        if (!chat && !completion) {
            (void)wb::apiErrorBody({404, "no route for " + req.method + " " + req.path, "invalid_request_error", "",
                                    "not_found"});
            continue;
        }
        nlohmann::json body;
        try {
            body = nlohmann::json::parse(req.body);
        } catch (const nlohmann::json::exception& e) {
            (void)wb::apiErrorBody({400, std::string("the request body is not valid JSON: ") + e.what(),
                                    "invalid_request_error", "", "invalid_json"});
            continue;
        }
        if (body.is_object() && body.contains("model") && body["model"].is_string())
            (void)wb::apiErrorBody({404, "The model `" + body["model"].get<std::string>() + "` does not exist",
                                    "invalid_request_error", "model", "model_not_found"});
        wb::ApiRequest ar;
        wb::ModelCaps caps;
        caps.images = true;
        const auto err = chat ? wb::parseChatRequest(body, wb::MediaLimits{}, caps, ar)
                              : wb::parseCompletionRequest(body, ar);
        if (err) (void)wb::apiErrorBody(*err);
    }
    return 0;
}
