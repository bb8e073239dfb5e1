// The OpenAI request mapping of `wb serve`: a request body's bytes as the handler gets them, parsed as JSON and
// mapped by parseChatRequest (messages, content parts, data-URL images with strict base64 and signature checks,
// sampling fields, stop strings, unsupported fields refused) and parseCompletionRequest (text or token-id
// prompts), then what the handler does next with what they accept: the images' declared pixels for the budget,
// their decoding as the engine would, and the error body for what they refuse. Seeds:
// tests/fuzz/seeds/fuzz_openai_request.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "fuzz_common.h"
#include "media/image.h"
#include "serve/openai_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text = wbfuzz::view(data, size);
    nlohmann::json body;
    try {
        body = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        (void)wb::apiErrorBody({400, std::string("the request body is not valid JSON: ") + e.what(),
                                    "invalid_request_error", "", "invalid_json"});
        return 0;
    }
    for (bool chat : {true, false}) {
        wb::ApiRequest req;
        wb::ModelCaps caps;
        caps.images = true;
        wb::MediaLimits limits;
        const auto err = chat ? wb::parseChatRequest(body, limits, caps, req) : wb::parseCompletionRequest(body, req);
        if (err) {
            if (err->status < 400 || err->status > 599) __builtin_trap();
            (void)wb::apiErrorBody(*err);
            continue;
        }
        for (const auto& m : req.messages)
            for (const auto& p : m.parts)
                if (p.kind == wb::ContentPart::Kind::Image && p.image) {
                    const std::string_view bytes(reinterpret_cast<const char*>(p.image->data()), p.image->size());
                    if (wb::sniffImage(bytes).empty()) __builtin_trap();  // the parser let a non-image through
                    if (wb::imagePixels(bytes) > 4'000'000) continue;
                    wb::DecodeLimits dl;
                    dl.maxPixels = 4'000'000;
                    (void)wb::decodeImage(*p.image, "request image", dl);
                }
    }
    return 0;
}
