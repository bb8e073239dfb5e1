// A BenchTarget for any OpenAI-compatible server (vLLM, trtllm-serve, SGLang, llama-server, Ollama, wb serve):
// streams /v1/completions or /v1/chat/completions and times the SSE chunks as they arrive, client-side. A request's
// prompt tokens are the server's own usage.prompt_tokens, or -1 (not reported), never the count of ids sent.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/load_test.h"
#include "core/result.h"

namespace wb {

struct HttpTargetOptions {
    std::string baseUrl;    // e.g. http://127.0.0.1:8000/v1
    std::string modelName;  // the server's model id
    std::string apiKey;
    bool chat = false;      // false: /completions (exact prompt tokens), true: /chat/completions
    bool ignoreEos = true;  // sent as ignore_eos (vLLM, SGLang, TensorRT-LLM, llama-server honour it)
    /// Prompt ids → text. Empty: /completions gets the ids themselves (an OpenAI-API token-id prompt), chat gets
    /// a seeded word salad of the same length (the remote tokenizer decides the exact count).
    std::function<std::string(const std::vector<int32_t>&)> detokenize;
    bool sendTokenIds = true;  // /completions with ids when no detokenizer is given
    int timeoutSeconds = 600;
};

class HttpTarget : public BenchTarget {
public:
    /// Checks the URL and that GET {baseUrl}/models answers; an unreachable server is an error here, so a run
    /// against it is reported as unreachable rather than as a table of failed requests.
    static Result<std::unique_ptr<HttpTarget>> create(HttpTargetOptions options);
    ~HttpTarget() override;  // waits for requests still running
    std::string name() const override;
    /// Images go as image_url parts (base64 data URLs) of a chat message: the chat endpoint only.
    bool acceptsImages() const override { return m_options.chat; }
    void start(const BenchRequest& request, std::function<void(const Event&)> onEvent) override;
    /// One request of the caller's own chat (OpenAI "messages": text and image_url parts) to /chat/completions,
    /// whatever the endpoint option, timed as start()'s.
    void startChat(nlohmann::json messages, int64_t maxTokens, std::function<void(const Event&)> onEvent);
    /// The model ids the server listed.
    const std::vector<std::string>& models() const { return m_models; }

private:
    explicit HttpTarget(HttpTargetOptions o) : m_options(std::move(o)) {}
    void runOne(BenchRequest request, std::function<void(const Event&)> onEvent, nlohmann::json messages = nullptr);
    HttpTargetOptions m_options;
    std::string m_hostPort;  // scheme://host:port
    std::string m_prefix;    // path before /completions, e.g. /v1
    std::vector<std::string> m_models;
    std::mutex m_mutex;
    std::vector<std::thread> m_threads;
};

/// Peak memory as the server reports it on its /metrics (sibling of baseUrl's /v1). Only series that mean the
/// server's peak or device memory are used; a server that reports none gets nullopt ("n/a"), never an estimate.
struct RemoteMemory {
    std::optional<double> peakBytes;
    std::string source;  // the metric used, or why there is none
};
RemoteMemory fetchRemoteMemory(const std::string& baseUrl, const std::string& apiKey = {});

}  // namespace wb
