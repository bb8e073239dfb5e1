#include "serve/openai_protocol.h"

#include <array>
#include <random>

using nlohmann::json;

namespace wb {

std::string dumpJson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sanitizeUtf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        size_t len = 0;
        uint32_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (RFC 3629 table)
        if (c < 0x80) len = 1;
        else if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c == 0xE0) len = 3, lo = 0xA0;
        else if (c >= 0xE1 && c <= 0xEC) len = 3;
        else if (c == 0xED) len = 3, hi = 0x9F;
        else if (c >= 0xEE && c <= 0xEF) len = 3;
        else if (c == 0xF0) len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3) len = 4;
        else if (c == 0xF4) len = 4, hi = 0x8F;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; ++k) {
            const unsigned char b = p[i + k];
            ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        }
        if (ok) {
            out.append(s.data() + i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD for the one byte, then resynchronise on the next
            ++i;
        }
    }
    return out;
}

std::string apiErrorBody(const ApiError& e) {
    json j{{"error",
            {{"message", sanitizeUtf8(e.message)},
             {"type", e.type},
             {"param", e.param.empty() ? json(nullptr) : json(sanitizeUtf8(e.param))},
             {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
    return dumpJson(j);
}

namespace {

ApiError badRequest(std::string message, std::string param = {}, std::string code = {}) {
    ApiError e;
    e.status = 400;
    e.message = std::move(message);
    e.param = std::move(param);
    e.code = std::move(code);
    return e;
}

bool isNumber(const json& v) { return v.is_number() && !v.is_boolean(); }

// Reads an optional number field; a present field of the wrong type is an error, like OpenAI's validation.
template <typename T>
std::optional<ApiError> optNumber(const json& body, const char* key, T& out, double lo, double hi) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!isNumber(*it)) return badRequest(std::string("'") + key + "' must be a number", key);
    const double v = it->get<double>();
    if (!(v >= lo && v <= hi))
        return badRequest(std::string("'") + key + "' must be between " + json(lo).dump() + " and " + json(hi).dump(),
                          key);
    if constexpr (std::is_integral_v<T>) {
        if (v != double(int64_t(v))) return badRequest(std::string("'") + key + "' must be an integer", key);
        out = T(int64_t(v));
    } else {
        out = T(v);
    }
    return std::nullopt;
}

std::optional<ApiError> optBool(const json& obj, const char* key, bool& out, const std::string& param) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) return badRequest("'" + param + "' must be a boolean", param);
    out = it->get<bool>();
    return std::nullopt;
}

// Fields shared by both endpoints: sampling, lengths, stop strings, the extra body.
std::optional<ApiError> parseCommon(const json& body, ApiRequest& out) {
    if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
        if (!it->is_string()) return badRequest("'model' must be a string", "model");
        out.model = it->get<std::string>();
    }
    if (auto e = optBool(body, "stream", out.stream, "stream")) return e;
    if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
        if (!it->is_object()) return badRequest("'stream_options' must be an object", "stream_options");
        if (auto e = optBool(*it, "include_usage", out.includeUsage, "stream_options.include_usage")) return e;
    }
    SamplingParams& s = out.sampling;
    s.temperature = 1.0f;  // OpenAI's default
    if (auto e = optNumber(body, "temperature", s.temperature, 0.0, 2.0)) return e;
    if (auto e = optNumber(body, "top_p", s.topP, 0.0, 1.0)) return e;
    if (s.topP <= 0.0f) return badRequest("'top_p' must be in (0, 1]", "top_p");
    if (auto e = optNumber(body, "top_k", s.topK, -1.0, 1e9)) return e;
    if (s.topK < 0) s.topK = 0;  // vLLM's -1 means off
    if (auto e = optNumber(body, "min_p", s.minP, 0.0, 1.0)) return e;
    if (auto e = optNumber(body, "frequency_penalty", s.frequencyPenalty, -2.0, 2.0)) return e;
    if (auto e = optNumber(body, "presence_penalty", s.presencePenalty, -2.0, 2.0)) return e;
    if (auto e = optNumber(body, "repetition_penalty", s.repetitionPenalty, 0.01, 10.0)) return e;
    if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
        if (!it->is_number_integer()) return badRequest("'seed' must be an integer", "seed");
        s.seed = it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t(it->get<int64_t>());
    } else {
        // Without a seed two identical requests may differ, as with OpenAI.
        s.seed = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
    }
    int64_t maxTokens = -1;
    if (auto e = optNumber(body, "max_tokens", maxTokens, 1.0, 1e9)) return e;
    if (auto e = optNumber(body, "max_completion_tokens", maxTokens, 1.0, 1e9)) return e;  // the newer name wins
    if (maxTokens > 0) out.maxTokens = maxTokens;
    if (auto it = body.find("n"); it != body.end() && !it->is_null() && !(isNumber(*it) && it->get<double>() == 1.0))
        return badRequest("only n = 1 is supported", "n");
    // Fields this server does not implement are refused by name rather than silently ignored: a client that
    // asks for log-probabilities, tool calls or a JSON schema must not get an answer that looks like it obeyed.
    auto set = [&](const char* key) {
        auto it = body.find(key);
        if (it == body.end() || it->is_null()) return false;
        if (it->is_boolean()) return it->get<bool>();
        if (it->is_number()) return it->get<double>() != 0.0;
        if (it->is_array() || it->is_object()) return !it->empty();
        return true;
    };
    for (const char* key : {"logprobs", "top_logprobs", "tools", "functions", "prediction"})
        if (set(key))
            return badRequest(std::string("'") + key + "' is not supported by this server", key, "unsupported_field");
    if (auto it = body.find("tool_choice"); it != body.end() && !it->is_null() &&
                                            !(it->is_string() && (*it == "none" || *it == "auto")))
        return badRequest("'tool_choice' is not supported by this server (no tools)", "tool_choice",
                          "unsupported_field");
    if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
        if (!it->is_object() || it->value("type", "") != "text")
            return badRequest("'response_format' other than {\"type\": \"text\"} is not supported by this server",
                              "response_format", "unsupported_field");
    }
    if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
        if (it->is_string()) {
            out.stop.push_back(it->get<std::string>());
        } else if (it->is_array()) {
            for (const auto& v : *it) {
                if (!v.is_string()) return badRequest("'stop' must be a string or a list of strings", "stop");
                out.stop.push_back(v.get<std::string>());
            }
        } else {
            return badRequest("'stop' must be a string or a list of strings", "stop");
        }
        std::erase_if(out.stop, [](const std::string& x) { return x.empty(); });
    }
    if (auto e = optBool(body, "ignore_eos", out.ignoreEos, "ignore_eos")) return e;
    // Extra body: chat_template_kwargs.enable_thinking (vLLM, SGLang) and the top-level enable_thinking of the
    // article's client; the top-level one wins when both are given.
    if (auto it = body.find("chat_template_kwargs"); it != body.end() && !it->is_null()) {
        if (!it->is_object()) return badRequest("'chat_template_kwargs' must be an object", "chat_template_kwargs");
        if (auto e = optBool(*it, "enable_thinking", out.enableThinking, "chat_template_kwargs.enable_thinking"))
            return e;
    }
    if (auto e = optBool(body, "enable_thinking", out.enableThinking, "enable_thinking")) return e;
    if (auto e = optBool(body, "return_reasoning", out.returnReasoning, "return_reasoning")) return e;
    return std::nullopt;
}

// "data:<mime>[;params];base64,<payload>" → mime and payload view.
bool splitDataUrl(std::string_view url, std::string& mime, std::string_view& payload) {
    if (url.substr(0, 5) != "data:") return false;
    const size_t comma = url.find(',');
    if (comma == std::string_view::npos) return false;
    std::string_view meta = url.substr(5, comma - 5);
    const size_t semi = meta.rfind(";base64");
    if (semi == std::string_view::npos || semi + 7 != meta.size()) return false;
    mime = std::string(meta.substr(0, meta.find(';')));
    payload = url.substr(comma + 1);
    return true;
}

std::optional<ApiError> checkImage(const json& part, const std::string& param, std::string& bytes) {
    auto iu = part.find("image_url");
    if (iu == part.end()) return badRequest("an image_url part needs an 'image_url' object", param);
    std::string url;
    if (iu->is_string()) {
        url = iu->get<std::string>();
    } else if (iu->is_object() && iu->contains("url") && (*iu)["url"].is_string()) {
        url = (*iu)["url"].get<std::string>();
    } else {
        return badRequest("'image_url' must have a string 'url'", param + ".image_url.url");
    }
    const std::string urlParam = param + ".image_url.url";
    std::string mime;
    std::string_view payload;
    if (url.rfind("data:", 0) != 0)
        return badRequest("only data: URLs are accepted for images (e.g. data:image/png;base64,...); this server "
                          "does not fetch remote or local files",
                          urlParam, "invalid_image_url");
    if (!splitDataUrl(url, mime, payload))
        return badRequest("the image data URL is malformed: expected data:<type>;base64,<data>", urlParam,
                          "invalid_image_url");
    if (!decodeBase64Strict(payload, bytes))
        return badRequest("the image data URL's base64 payload is invalid (" + std::to_string(payload.size()) +
                              " characters; strict RFC 4648 base64 without whitespace is required)",
                          urlParam, "invalid_base64");
    if (sniffImage(bytes).empty())
        return badRequest("the image is not a valid PNG or JPEG (declared as '" + mime + "', " +
                              std::to_string(bytes.size()) + " bytes)",
                          urlParam, "invalid_image");
    return std::nullopt;
}

std::optional<ApiError> checkAudio(const json& part, const std::string& param, std::string& bytes) {
    auto ia = part.find("input_audio");
    if (ia == part.end() || !ia->is_object() || !ia->contains("data") || !(*ia)["data"].is_string())
        return badRequest("an input_audio part needs an 'input_audio' object with string 'data'", param + ".input_audio");
    const std::string format = ia->value("format", "");
    if (format != "wav" && format != "mp3")
        return badRequest("input_audio.format must be 'wav' or 'mp3'", param + ".input_audio.format");
    const std::string& data = (*ia)["data"].get_ref<const std::string&>();
    if (!decodeBase64Strict(data, bytes))
        return badRequest("the audio's base64 data is invalid", param + ".input_audio.data", "invalid_base64");
    if (sniffAudio(bytes) != format)
        return badRequest("the audio data is not a valid " + format + " file", param + ".input_audio.data",
                          "invalid_audio");
    return std::nullopt;
}

}  // namespace

std::string encodeBase64(std::span<const uint8_t> in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const uint32_t v = (uint32_t(in[i]) << 16) | (uint32_t(in[i + 1]) << 8) | in[i + 2];
        for (int k = 18; k >= 0; k -= 6) out += t[(v >> k) & 63];
    }
    if (i < in.size()) {  // one or two bytes left
        const uint32_t v = (uint32_t(in[i]) << 16) | (i + 1 < in.size() ? uint32_t(in[i + 1]) << 8 : 0u);
        out += t[(v >> 18) & 63];
        out += t[(v >> 12) & 63];
        out += i + 1 < in.size() ? t[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

bool decodeBase64Strict(std::string_view in, std::string& out) {
    static const std::array<int8_t, 256> table = [] {
        std::array<int8_t, 256> t{};
        t.fill(-1);
        const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < 64; ++i) t[uint8_t(a[i])] = int8_t(i);
        return t;
    }();
    out.clear();
    if (in.size() % 4 != 0) return false;
    size_t pad = 0;
    if (!in.empty() && in.back() == '=') pad = (in.size() >= 2 && in[in.size() - 2] == '=') ? 2 : 1;
    out.reserve(in.size() / 4 * 3);
    for (size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        uint32_t v = 0;
        for (size_t k = 0; k < 4; ++k) {
            const char c = in[i + k];
            int d;
            if (c == '=') {
                if (!last || k < 4 - pad) return false;
                d = 0;
            } else {
                d = table[uint8_t(c)];
                if (d < 0) return false;
            }
            v = (v << 6) | uint32_t(d);
        }
        // Canonical encodings leave the bits under the padding at zero.
        if (last && pad == 1 && (v & 0xFF)) return false;
        if (last && pad == 2 && (v & 0xFFFF)) return false;
        out.push_back(char(v >> 16));
        if (!(last && pad == 2)) out.push_back(char((v >> 8) & 0xFF));
        if (!(last && pad >= 1)) out.push_back(char(v & 0xFF));
    }
    return true;
}

uint64_t imagePixels(std::string_view b) {
    auto u8 = [&](size_t o) { return uint32_t(uint8_t(b[o])); };
    if (sniffImage(b) == "png") {
        auto be32 = [&](size_t o) { return (u8(o) << 24) | (u8(o + 1) << 16) | (u8(o + 2) << 8) | u8(o + 3); };
        return uint64_t(be32(16)) * be32(20);
    }
    if (b.size() < 4 || u8(0) != 0xFF || u8(1) != 0xD8) return 0;
    size_t o = 2;
    while (o + 4 <= b.size()) {
        if (u8(o) != 0xFF) return 0;
        const uint32_t marker = u8(o + 1);
        if (marker == 0xFF) {  // fill byte
            ++o;
            continue;
        }
        if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
            o += 2;
            continue;
        }
        const size_t len = (u8(o + 2) << 8) | u8(o + 3);
        if (len < 2) return 0;
        const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
        if (sof) {
            if (o + 9 > b.size()) return 0;
            const uint64_t h = (u8(o + 5) << 8) | u8(o + 6), w = (u8(o + 7) << 8) | u8(o + 8);
            return w * h;
        }
        if (marker == 0xDA || marker == 0xD9) return 0;  // scan data or end before any frame header
        o += 2 + len;
    }
    return 0;
}

std::string sniffImage(std::string_view b) {
    static const char png[] = "\x89PNG\r\n\x1a\n";
    if (b.size() >= 24 && b.substr(0, 8) == std::string_view(png, 8) && b.substr(12, 4) == "IHDR") {
        auto be32 = [&](size_t o) {
            return (uint32_t(uint8_t(b[o])) << 24) | (uint32_t(uint8_t(b[o + 1])) << 16) |
                   (uint32_t(uint8_t(b[o + 2])) << 8) | uint32_t(uint8_t(b[o + 3]));
        };
        if (be32(16) > 0 && be32(20) > 0) return "png";
        return {};
    }
    if (b.size() >= 4 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF) return "jpeg";
    return {};
}

std::string sniffAudio(std::string_view b) {
    if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WAVE") return "wav";
    if (b.size() >= 3 && b.substr(0, 3) == "ID3") return "mp3";
    if (b.size() >= 2 && uint8_t(b[0]) == 0xFF && (uint8_t(b[1]) & 0xE0) == 0xE0) return "mp3";
    return {};
}

std::optional<ApiError> parseChatRequest(const json& body, const MediaLimits& limits, const ModelCaps& caps,
                                         ApiRequest& out) {
    if (!body.is_object()) return badRequest("the request body must be a JSON object");
    if (auto e = parseCommon(body, out)) return e;
    auto msgs = body.find("messages");
    if (msgs == body.end() || !msgs->is_array() || msgs->empty())
        return badRequest("'messages' must be a non-empty list", "messages");

    // First pass: count media so the limit is reported before any payload is decoded.
    for (const auto& m : *msgs) {
        if (!m.is_object()) continue;
        auto c = m.find("content");
        if (c == m.end() || !c->is_array()) continue;
        for (const auto& p : *c) {
            if (!p.is_object()) continue;
            const std::string type = p.value("type", "");
            if (type == "image_url") ++out.numImages;
            if (type == "input_audio") ++out.numAudios;
        }
    }
    if (out.numImages > limits.maxImages)
        return badRequest("at most " + std::to_string(limits.maxImages) + " images are allowed per request, got " +
                              std::to_string(out.numImages),
                          "messages", "too_many_images");
    if (out.numAudios > limits.maxAudios)
        return badRequest("at most " + std::to_string(limits.maxAudios) + " audio inputs are allowed per request, got " +
                              std::to_string(out.numAudios),
                          "messages", "too_many_audios");

    std::string firstImageParam, firstAudioParam;
    for (size_t i = 0; i < msgs->size(); ++i) {
        const json& m = (*msgs)[i];
        const std::string mp = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) return badRequest("each message must be an object", mp);
        auto r = m.find("role");
        if (r == m.end() || !r->is_string()) return badRequest("each message needs a string 'role'", mp + ".role");
        std::string role = r->get<std::string>();
        if (role == "developer") role = "system";  // OpenAI's newer name for the system role
        if (role != "system" && role != "user" && role != "assistant" && role != "tool")
            return badRequest("unknown role '" + role + "'", mp + ".role");
        ChatMessage cm{role, {}, {}};
        auto c = m.find("content");
        if (c == m.end() || c->is_null()) {
            if (role != "assistant") return badRequest("'content' is required", mp + ".content");
        } else if (c->is_string()) {
            cm.content = c->get<std::string>();
        } else if (c->is_array()) {
            // Without images: text parts joined by newlines (vLLM's "string" content format, which the phone
            // agent's server uses). With images: the parts in order, images where they stand (the template's
            // list form).
            std::vector<ContentPart> parts;
            for (size_t k = 0; k < c->size(); ++k) {
                const json& p = (*c)[k];
                const std::string pp = mp + ".content[" + std::to_string(k) + "]";
                if (!p.is_object() || !p.contains("type") || !p["type"].is_string())
                    return badRequest("each content part needs a string 'type'", pp);
                const std::string type = p["type"].get<std::string>();
                if (type == "text") {
                    if (!p.contains("text") || !p["text"].is_string())
                        return badRequest("a text part needs a string 'text'", pp + ".text");
                    if (!cm.content.empty()) cm.content += "\n";
                    cm.content += p["text"].get<std::string>();
                    parts.push_back(ContentPart::makeText(p["text"].get<std::string>()));
                } else if (type == "image_url") {
                    std::string bytes;
                    if (auto e = checkImage(p, pp, bytes)) return e;
                    if (firstImageParam.empty()) firstImageParam = pp;
                    // Always the bytes the client sent (a data URL): never ContentPart::makeImageFile, which
                    // would let a client make the engine read any file on this machine.
                    parts.push_back(ContentPart::makeImage(std::vector<uint8_t>(bytes.begin(), bytes.end())));
                } else if (type == "input_audio") {
                    std::string bytes;
                    if (auto e = checkAudio(p, pp, bytes)) return e;
                    if (firstAudioParam.empty()) firstAudioParam = pp;
                    if (!caps.audio && caps.transcribe) {
                        // A model without audio input gets what was said, as text in the part's place.
                        auto text = caps.transcribe(bytes);
                        if (!text)
                            return badRequest("the audio could not be transcribed: " + text.error().message,
                                              pp + ".input_audio.data", "invalid_audio");
                        if (!cm.content.empty()) cm.content += "\n";
                        cm.content += *text;
                        parts.push_back(ContentPart::makeText(*text));
                    }
                } else {
                    return badRequest("unsupported content part type '" + type + "'", pp + ".type");
                }
            }
            bool images = false;
            for (const ContentPart& part : parts) images |= part.kind == ContentPart::Kind::Image;
            if (images) cm.parts = std::move(parts);
        } else {
            return badRequest("'content' must be a string or a list of content parts", mp + ".content");
        }
        out.messages.push_back(std::move(cm));
    }
    if (!firstImageParam.empty() && !caps.images)
        return badRequest("the model '" + out.model + "' does not accept images (it is a text-only model); remove "
                              "the image_url parts or serve a vision model",
                          firstImageParam, "model_does_not_support_images");
    if (!firstAudioParam.empty() && !caps.audio && !caps.transcribe)
        return badRequest("the model '" + out.model + "' does not accept audio (it is a text-only model)",
                          firstAudioParam, "model_does_not_support_audio");
    return std::nullopt;
}

std::optional<ApiError> parseCompletionRequest(const json& body, ApiRequest& out) {
    if (!body.is_object()) return badRequest("the request body must be a JSON object");
    if (auto e = parseCommon(body, out)) return e;
    auto p = body.find("prompt");
    if (p == body.end() || p->is_null()) return badRequest("'prompt' is required", "prompt");
    if (p->is_string()) {
        out.prompt = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
        out.prompt = (*p)[0].get<std::string>();
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
        for (const auto& t : *p) {
            if (!t.is_number_integer()) return badRequest("a token-id prompt must hold integers only", "prompt");
            // Checked before narrowing: 2^32 + 5 must not become token 5.
            const bool inRange = t.is_number_unsigned() ? t.get<uint64_t>() <= uint64_t(INT32_MAX)
                                                        : (t.get<int64_t>() >= 0 && t.get<int64_t>() <= INT32_MAX);
            if (!inRange)
                return badRequest("token id " + t.dump() + " is not a token id (0 to 2^31-1)", "prompt",
                                  "invalid_token_id");
            out.promptTokens.push_back(int32_t(t.get<int64_t>()));
        }
    } else {
        return badRequest("'prompt' must be a string or a list of token ids (batched prompts are not supported)",
                          "prompt");
    }
    if (out.prompt.empty() && out.promptTokens.empty()) return badRequest("'prompt' is empty", "prompt");
    return std::nullopt;
}

}  // namespace wb
