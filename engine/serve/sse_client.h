// The client side of an OpenAI-compatible server, shared by the bench's HTTP target (api/http_target.h) and the
// phone agent's remote target (agent/): base-URL splitting, GET /models, and a streamed POST whose SSE `data:`
// payloads are handed over as they arrive.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/result.h"

namespace wb::http {

/// "http://host:port/v1" → "http://host:port" and "/v1" (trailing slashes dropped). False if not http(s).
bool splitBaseUrl(const std::string& url, std::string& hostPort, std::string& prefix);

/// The model ids GET {baseUrl}/models lists; an unreachable server or a non-200 answer is an error naming it.
Result<std::vector<std::string>> listModels(const std::string& baseUrl, const std::string& apiKey);

struct SseOutcome {
    int status = 0;              // the HTTP status (0: no answer)
    std::string transportError;  // set when the request failed below HTTP (connection refused, timeout...)
    std::string errorBody;       // the start of a non-200 answer's body
};

/// POSTs a JSON body to hostPort + path and calls onData with each SSE `data:` payload ("[DONE]" included) of a
/// 200 answer, on the calling thread, as the chunks arrive. `keepGoing` (optional) is asked before each chunk and,
/// from a watcher thread, every 50 ms while the request is in flight (so it must be thread-safe: an atomic flag);
/// false ends the request (a cancel), also one still waiting for its first byte.
SseOutcome postStreaming(const std::string& hostPort, const std::string& path, const std::string& apiKey,
                         std::string body, const std::function<void(const std::string&)>& onData,
                         int readTimeoutSeconds, const std::function<bool()>& keepGoing = {});

/// One `data:` payload of an OpenAI-compatible stream, read once for every client: the end marker, a chunk
/// object, an error object (its message, or the whole object when it has none), or something to skip.
struct StreamChunk {
    enum class Kind { Done, Object, Error, Skip };
    Kind kind = Kind::Skip;
    nlohmann::json object;  // Kind::Object
    std::string error;      // Kind::Error
};
StreamChunk readStreamChunk(const std::string& payload);

}  // namespace wb::http
