// The OpenAI wire format, without any HTTP: request bodies → engine requests, errors in OpenAI's JSON shape,
// data-URL media checks. Kept apart from the server so the rules can be tested (and reused) on their own.
#pragma once

#include "core/result.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <functional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

#include "api/engine.h"
#include "api/server.h"
#include "serve/openai_protocol.h"

namespace wb {

/// An error as OpenAI sends it: {"error":{"message","type","param","code"}} with an HTTP status.
struct ApiError {
    int status = 400;
    std::string message;
    std::string type = "invalid_request_error";
    std::string param;  // empty: null
    std::string code;   // empty: null
};
/// Always valid UTF-8 JSON, whatever bytes the message carries (a request path, a parser's excerpt of the body).
std::string apiErrorBody(const ApiError& e);

/// json::dump that never throws on invalid UTF-8 inside strings: such bytes become U+FFFD. Every body the server
/// writes goes through it, so no client input can turn serialisation into an exception.
std::string dumpJson(const nlohmann::json& j);
/// `s` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
std::string sanitizeUtf8(std::string_view s);

/// What the loaded model can take besides text. The Llama-family models take text only.
struct ModelCaps {
    bool images = false;
    bool audio = false;
    /// Set when the server has a speech model: input_audio parts (already checked) are replaced by their
    /// transcript for a model without audio input. Returns the text or an error.
    std::function<Result<std::string>(std::string_view audioBytes)> transcribe;
};

/// A chat or completion request, parsed and checked, before its prompt is tokenized.
struct ApiRequest {
    std::string model;
    bool stream = false;
    bool includeUsage = false;
    std::vector<ChatMessage> messages;   // chat
    std::string prompt;                  // completions (text)
    std::vector<int32_t> promptTokens;   // completions (token ids)
    SamplingParams sampling;
    std::optional<int64_t> maxTokens;    // absent: what the context has left
    std::vector<std::string> stop;
    bool ignoreEos = false;
    bool enableThinking = true;
    bool returnReasoning = false;
    size_t numImages = 0;
    size_t numAudios = 0;
};

/// Parses a /v1/chat/completions body. The media checks run in the order a client needs to fix things:
/// count limits, then each item's encoding (data URL syntax, strict base64, file signature), and only then
/// whether the model accepts that modality, so a broken image gets its own error even on a text-only model.
std::optional<ApiError> parseChatRequest(const nlohmann::json& body, const MediaLimits& limits,
                                         const ModelCaps& caps, ApiRequest& out);
/// Parses a /v1/completions body (prompt: a string, a one-string list, or a list of token ids).
std::optional<ApiError> parseCompletionRequest(const nlohmann::json& body, ApiRequest& out);

/// RFC 4648 base64 without whitespace, with canonical padding: anything else is rejected, not repaired.
bool decodeBase64Strict(std::string_view in, std::string& out);
/// RFC 4648 base64 with padding: what decodeBase64Strict accepts (data URLs of images the bench sends).
std::string encodeBase64(std::span<const uint8_t> in);

/// "png" / "jpeg" when the bytes start like one (PNG: signature and an IHDR with nonzero size), else empty.
std::string sniffImage(std::string_view bytes);
/// Width × height an encoded PNG (IHDR) or JPEG (first SOFn marker) declares, read from the header without
/// decoding; 0 when the header cannot be read. What decoding will allocate is proportional to it.
uint64_t imagePixels(std::string_view bytes);
/// "wav" / "mp3" when the bytes start like one, else empty.
std::string sniffAudio(std::string_view bytes);

}  // namespace wb
