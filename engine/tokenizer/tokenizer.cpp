// Tokenizer factories: GGUF metadata and Hugging Face folders.
#include "api/tokenizer.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "formats/json_text.h"
#include "formats/gguf.h"
#include "tokenizer/sp_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"

namespace wb {

namespace {

using nlohmann::json;

Result<int32_t> optionalId(const GgufFile& gguf, const std::string& key, int32_t fallback, size_t vocab) {
    const auto v = gguf.getInt(key);
    if (!v) return fallback < static_cast<int32_t>(vocab) ? fallback : -1;
    // Some converters write -1 (or UINT32_MAX) for "none".
    if (*v < 0 || *v == 0xFFFFFFFFll) return -1;
    if (*v >= static_cast<int64_t>(vocab))
        return makeError(gguf.path() + ": " + key + " = " + std::to_string(*v) + " is outside the vocabulary of " +
                         std::to_string(vocab) + " tokens");
    return static_cast<int32_t>(*v);
}

// BOS, EOS, UNK and EOT of a GGUF vocabulary; the defaults apply when a key is absent.
template <class Tok>
Result<void> setGgufSpecialIds(const GgufFile& gguf, Tok& tok, int32_t bos, int32_t eos, int32_t unk, size_t vocab) {
    auto b = optionalId(gguf, "tokenizer.ggml.bos_token_id", bos, vocab);
    auto e = optionalId(gguf, "tokenizer.ggml.eos_token_id", eos, vocab);
    auto u = optionalId(gguf, "tokenizer.ggml.unknown_token_id", unk, vocab);
    auto t = optionalId(gguf, "tokenizer.ggml.eot_token_id", -1, vocab);
    for (const auto* r : {&b, &e, &u, &t})
        if (!r->ok()) return r->error();
    tok.setBos(*b);
    tok.setEos(*e);
    tok.m_unk = *u;
    tok.m_eot = *t;
    return {};
}

/// Pre-tokenizer for a GGUF tokenizer.ggml.pre value. Names whose regex is not one of the three implemented
/// fall back to GPT-2's, the most common base of the others, rather than refusing the model.
PreTokenizer preTokenizerFromName(const std::string& pre) {
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "smaug-bpe" || pre == "dbrx" ||
        pre == "glm4" || pre == "chatglm-bpe")
        return PreTokenizer::Llama3;
    if (pre == "qwen2" || pre == "qwen35" || pre == "deepseek-r1-qwen") return PreTokenizer::Qwen2;
    return PreTokenizer::Gpt2;
}

Result<std::unique_ptr<Tokenizer>> spmFromGguf(const GgufFile& gguf, const std::vector<std::string>& tokens,
                                               std::vector<TokenType> types) {
    auto tok = std::make_unique<SpmTokenizer>();
    tok->m_pieces = tokens;
    tok->m_types = std::move(types);
    const auto* scores = gguf.getNumberArray("tokenizer.ggml.scores");
    if (scores && scores->size() != tokens.size())
        return makeError(gguf.path() + ": tokenizer.ggml.scores has " + std::to_string(scores->size()) +
                         " entries for " + std::to_string(tokens.size()) + " tokens");
    tok->m_scores.assign(tokens.size(), 0.0f);
    if (scores)
        for (size_t i = 0; i < tokens.size(); ++i) tok->m_scores[i] = static_cast<float>((*scores)[i]);

    // llama.cpp's defaults for SentencePiece vocabularies when the ids are not written.
    WB_TRY(setGgufSpecialIds(gguf, *tok, 1, 2, 0, tokens.size()));
    tok->setAddBos(gguf.getBool("tokenizer.ggml.add_bos_token").value_or(true));
    tok->m_addSpacePrefix = gguf.getBool("tokenizer.ggml.add_space_prefix").value_or(true);
    tok->buildIndex();
    tok->finishSetup();
    return std::unique_ptr<Tokenizer>(std::move(tok));
}

Result<std::unique_ptr<Tokenizer>> bpeFromGguf(const GgufFile& gguf, const std::vector<std::string>& tokens,
                                               std::vector<TokenType> types) {
    auto tok = std::make_unique<BpeTokenizer>();
    tok->m_pieces = tokens;
    tok->m_types = std::move(types);
    const auto* mergeStrings = gguf.getStringArray("tokenizer.ggml.merges");
    if (!mergeStrings) return makeError(gguf.path() + ": tokenizer.ggml.merges is missing for a gpt2 vocabulary");
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(mergeStrings->size());
    for (const auto& m : *mergeStrings) {
        // Search from 1: the left half is never empty, so a leading space would belong to it.
        const size_t sp = m.find(' ', 1);
        if (sp == std::string::npos)
            return makeError(gguf.path() + ": tokenizer.ggml.merges entry \"" + m + "\" has no space separator");
        merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    const std::string pre = gguf.getString("tokenizer.ggml.pre").value_or("default");
    tok->m_preTokenizer = preTokenizerFromName(pre);
    const bool llama3 = tok->m_preTokenizer == PreTokenizer::Llama3;
    tok->m_ignoreMerges = llama3;

    WB_TRY(setGgufSpecialIds(gguf, *tok, -1, -1, -1, tokens.size()));
    tok->setAddBos(gguf.getBool("tokenizer.ggml.add_bos_token").value_or(llama3));
    WB_TRY(tok->buildIndex(merges));
    tok->finishSetup();
    return std::unique_ptr<Tokenizer>(std::move(tok));
}

Result<std::string> readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return makeError(path + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Result<json> readJson(const std::string& path) {
    auto text = readFile(path);
    if (!text) return text.error();
    return parseJsonObject(*text, path);
}

/// bos_token / eos_token in tokenizer_config.json: a string, or an AddedToken object with "content".
std::optional<std::string> tokenText(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
}

std::optional<std::string> chatTemplateFrom(const json& config) {
    if (!config.contains("chat_template")) return std::nullopt;
    const json& t = config["chat_template"];
    if (t.is_string()) return t.get<std::string>();
    // Newer configs list named templates; "default" is the one used for plain chat.
    if (t.is_array()) {
        for (const auto& e : t)
            if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
                e["template"].is_string())
                return e["template"].get<std::string>();
    }
    return std::nullopt;
}

/// Maps a tokenizer.json Split regex onto one of the hand-written pre-tokenizers.
Result<PreTokenizer> preTokenizerFromRegex(const std::string& pattern, const std::string& path) {
    if (pattern.find("\\p{N}{1,3}") != std::string::npos) return PreTokenizer::Llama3;
    if (pattern.find("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|") != std::string::npos) return PreTokenizer::Qwen2;
    if (pattern.find(" ?\\p{L}+| ?\\p{N}+") != std::string::npos) return PreTokenizer::Gpt2;
    return makeError(path + ": pre_tokenizer regex is not one of GPT-2 / Llama 3 / Qwen2: " + pattern);
}

/// Walks pre_tokenizer (possibly a Sequence) for the splitting rule. Returns whether it is byte-level at all.
Result<bool> scanPreTokenizer(const json& pt, PreTokenizer& kind, const std::string& path) {
    if (!pt.is_object()) return false;
    const std::string type = pt.value("type", "");
    if (type == "Sequence" && pt.contains("pretokenizers")) {
        bool byteLevel = false;
        for (const auto& sub : pt["pretokenizers"]) {
            auto r = scanPreTokenizer(sub, kind, path);
            if (!r) return r.error();
            byteLevel = byteLevel || *r;
        }
        return byteLevel;
    }
    if (type == "Split" && pt.contains("pattern") && pt["pattern"].is_object() && pt["pattern"].contains("Regex")) {
        auto k = preTokenizerFromRegex(pt["pattern"]["Regex"].get<std::string>(), path);
        if (!k) return k.error();
        kind = *k;
        return false;
    }
    if (type == "ByteLevel") {
        if (pt.value("use_regex", true)) kind = PreTokenizer::Gpt2;
        return true;
    }
    return false;
}

Result<std::unique_ptr<TokenizerBase>> bpeFromTokenizerJson(const json& tj, const std::string& path) {
    const json& model = tj.contains("model") ? tj["model"] : json();
    if (!model.is_object() || model.value("type", "") != "BPE")
        return makeError(path + ": model.type is not BPE (only byte-level BPE tokenizer.json is supported)");
    PreTokenizer kind = PreTokenizer::Gpt2;
    auto byteLevel = scanPreTokenizer(tj.contains("pre_tokenizer") ? tj["pre_tokenizer"] : json(), kind, path);
    if (!byteLevel) return byteLevel.error();
    const bool byteDecoder =
        tj.contains("decoder") && tj["decoder"].is_object() && tj["decoder"].value("type", "") == "ByteLevel";
    if (!*byteLevel && !byteDecoder) return makeError(path + ": not a byte-level BPE tokenizer");

    if (!model.contains("vocab") || !model["vocab"].is_object()) return makeError(path + ": model.vocab is missing");
    auto tok = std::make_unique<BpeTokenizer>();
    tok->m_preTokenizer = kind;
    tok->m_ignoreMerges = model.value("ignore_merges", false);

    size_t size = 0;
    const auto grow = [&](int64_t id) {
        if (id >= 0 && static_cast<size_t>(id) >= size) size = static_cast<size_t>(id) + 1;
    };
    for (const auto& [text, id] : model["vocab"].items()) {
        // Ids index the piece table below: a negative one (or one past INT64_MAX, which reads as negative) is an
        // error here, not a write before the table.
        if (!id.is_number_integer() || id.get<int64_t>() < 0)
            return makeError(path + ": model.vocab[\"" + text + "\"] is not a non-negative integer");
        grow(id.get<int64_t>());
    }
    const json added =
        tj.contains("added_tokens") && tj["added_tokens"].is_array() ? tj["added_tokens"] : json::array();
    for (const auto& a : added) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer()) continue;
        if (a["id"].get<int64_t>() < 0)
            return makeError(path + ": added_tokens has an entry with the negative id " + a["id"].dump());
        grow(a["id"].get<int64_t>());
    }
    if (size > (1u << 24)) return makeError(path + ": implausible vocabulary size " + std::to_string(size));

    tok->m_pieces.assign(size, std::string());
    tok->m_types.assign(size, TokenType::Unused);
    for (const auto& [text, id] : model["vocab"].items()) {
        const auto i = static_cast<size_t>(id.get<int64_t>());
        tok->m_pieces[i] = text;
        tok->m_types[i] = TokenType::Normal;
    }
    for (const auto& a : added) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content")) continue;
        const auto i = static_cast<size_t>(a["id"].get<int64_t>());
        tok->m_pieces[i] = a["content"].get<std::string>();
        tok->m_types[i] = a.value("special", false) ? TokenType::Control : TokenType::UserDefined;
        tok->m_stripFlags[static_cast<int32_t>(i)] = {a.value("lstrip", false), a.value("rstrip", false)};
    }

    std::vector<std::pair<std::string, std::string>> merges;
    if (model.contains("merges") && model["merges"].is_array()) {
        for (const auto& m : model["merges"]) {
            if (m.is_string()) {
                const std::string s = m.get<std::string>();
                const size_t sp = s.find(' ', 1);
                if (sp == std::string::npos) return makeError(path + ": merge \"" + s + "\" has no space separator");
                merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
            } else {
                return makeError(path + ": model.merges has an entry that is neither \"a b\" nor [a, b]");
            }
        }
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
        for (size_t i = 0; i < size; ++i)
            if (tok->m_pieces[i] == model["unk_token"].get<std::string>()) tok->m_unk = static_cast<int32_t>(i);
    }
    // Without add_bos_token in the config, the post-processor template says whether a BOS goes first.
    tok->setAddBos(false);
    if (tj.contains("post_processor") && tj["post_processor"].is_object()) {
        std::vector<json> procs{tj["post_processor"]};
        if (tj["post_processor"].value("type", "") == "Sequence" && tj["post_processor"].contains("processors"))
            procs.assign(tj["post_processor"]["processors"].begin(), tj["post_processor"]["processors"].end());
        for (const auto& p : procs) {
            if (p.value("type", "") != "TemplateProcessing" || !p.contains("single") || !p["single"].is_array() ||
                p["single"].empty())
                continue;
            const json& first = p["single"][0];
            if (first.contains("SpecialToken") && first["SpecialToken"].contains("id")) {
                const std::string text = first["SpecialToken"]["id"].get<std::string>();
                for (size_t i = 0; i < size; ++i)
                    if (tok->m_pieces[i] == text) {
                        tok->setBos(static_cast<int32_t>(i));
                        tok->setAddBos(true);
                        break;
                    }
            }
        }
    }
    WB_TRY(tok->buildIndex(merges));
    return std::unique_ptr<TokenizerBase>(std::move(tok));
}

std::optional<int32_t> findPiece(const TokenizerBase& tok, const std::string& text) {
    for (int32_t i = 0; i < tok.vocabSize(); ++i)
        if (tok.m_pieces[static_cast<size_t>(i)] == text) return i;
    return std::nullopt;
}

/// tokenizer_config.json: added tokens, bos/eos, add_bos_token, chat_template.
Result<void> applyTokenizerConfig(TokenizerBase& tok, const json& config, const std::string& path) {
    if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
        for (const auto& [key, a] : config["added_tokens_decoder"].items()) {
            char* end = nullptr;
            const long id = std::strtol(key.c_str(), &end, 10);
            if (!end || *end || id < 0 || id > (1 << 24) || !a.is_object() || !a.contains("content")) continue;
            const auto i = static_cast<size_t>(id);
            if (i >= tok.m_pieces.size()) {
                tok.m_pieces.resize(i + 1);
                tok.m_types.resize(i + 1, TokenType::Unused);
            }
            tok.m_pieces[i] = a["content"].get<std::string>();
            tok.m_types[i] = a.value("special", false) ? TokenType::Control : TokenType::UserDefined;
            tok.m_stripFlags[static_cast<int32_t>(id)] = {a.value("lstrip", false), a.value("rstrip", false)};
        }
    }
    if (config.contains("bos_token")) {
        if (auto t = tokenText(config["bos_token"])) {
            auto id = findPiece(tok, *t);
            if (!id) return makeError(path + ": bos_token \"" + *t + "\" is not in the vocabulary");
            tok.setBos(*id);
        }
    }
    if (config.contains("eos_token")) {
        if (auto t = tokenText(config["eos_token"])) {
            auto id = findPiece(tok, *t);
            if (!id) return makeError(path + ": eos_token \"" + *t + "\" is not in the vocabulary");
            tok.setEos(*id);
        }
    }
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
        tok.setAddBos(config["add_bos_token"].get<bool>());
    if (auto t = chatTemplateFrom(config)) tok.setChatTemplate(*t);
    return {};
}

Result<std::unique_ptr<Tokenizer>> loadHfFolder(const std::string& dir) {
    namespace fs = std::filesystem;
    const std::string jsonPath = (fs::path(dir) / "tokenizer.json").string();
    const std::string modelPath = (fs::path(dir) / "tokenizer.model").string();
    const std::string configPath = (fs::path(dir) / "tokenizer_config.json").string();
    std::error_code ec;

    std::unique_ptr<TokenizerBase> tok;
    std::string jsonError;
    if (fs::exists(jsonPath, ec)) {
        auto tj = readJson(jsonPath);
        if (!tj) return tj.error();
        auto r = bpeFromTokenizerJson(*tj, jsonPath);
        if (r)
            tok = std::move(r.value());
        else
            jsonError = r.error().message;
    }
    // A tokenizer.json that is not byte-level BPE (Llama 2's SentencePiece-style one) is left to tokenizer.model.
    if (!tok && fs::exists(modelPath, ec)) {
        auto r = SentencePieceTokenizer::load(modelPath);
        if (!r) return r.error();
        tok = std::move(r.value());
    }
    if (!tok) {
        if (!jsonError.empty()) return makeError(jsonError);
        return makeError(dir + ": neither tokenizer.json nor tokenizer.model found");
    }
    if (fs::exists(configPath, ec)) {
        auto config = readJson(configPath);
        if (!config) return config.error();
        WB_TRY(applyTokenizerConfig(*tok, *config, configPath));
    }
    // Newer checkpoints (GLM-4.1V among them) ship the template as its own file; like Transformers, it wins
    // over a chat_template key in tokenizer_config.json.
    const std::string jinjaPath = (fs::path(dir) / "chat_template.jinja").string();
    if (fs::exists(jinjaPath, ec)) {
        std::ifstream in(jinjaPath, std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!in.good() && !in.eof()) return makeError(jinjaPath + ": cannot read");
        if (!text.empty()) tok->setChatTemplate(text);
    }
    tok->finishSetup();
    return std::unique_ptr<Tokenizer>(std::move(tok));
}

Result<std::unique_ptr<Tokenizer>> loadGguf(const GgufFile& gguf) {
    const auto model = gguf.getString("tokenizer.ggml.model");
    if (!model) return makeError(gguf.path() + ": tokenizer.ggml.model is missing");
    const auto* tokens = gguf.getStringArray("tokenizer.ggml.tokens");
    if (!tokens || tokens->empty()) return makeError(gguf.path() + ": tokenizer.ggml.tokens is missing or empty");
    std::vector<TokenType> types(tokens->size(), TokenType::Normal);
    if (const auto* tt = gguf.getNumberArray("tokenizer.ggml.token_type")) {
        if (tt->size() != tokens->size())
            return makeError(gguf.path() + ": tokenizer.ggml.token_type has " + std::to_string(tt->size()) +
                             " entries for " + std::to_string(tokens->size()) + " tokens");
        for (size_t i = 0; i < tt->size(); ++i) {
            const double v = (*tt)[i];
            types[i] = v >= 0 && v <= 6 ? static_cast<TokenType>(static_cast<int>(v)) : TokenType::Normal;
        }
    }
    Result<std::unique_ptr<Tokenizer>> tok = makeError("");
    if (*model == "llama")
        tok = spmFromGguf(gguf, *tokens, std::move(types));
    else if (*model == "gpt2")
        tok = bpeFromGguf(gguf, *tokens, std::move(types));
    else
        return makeError(gguf.path() + ": tokenizer.ggml.model \"" + *model + "\" is not supported (llama, gpt2)");
    if (!tok) return tok.error();
    auto* base = static_cast<TokenizerBase*>(tok.value().get());
    if (auto t = gguf.getString("tokenizer.chat_template")) base->setChatTemplate(*t);
    if (auto v = gguf.getInt("tokenizer.ggml.eom_token_id"); v && *v >= 0 && *v < base->vocabSize())
        base->addStopToken(static_cast<int32_t>(*v));
    return tok;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromGguf(const GgufFile& gguf) {
    try {
        return loadGguf(gguf);
    } catch (const std::exception& e) {  // allocation failure on an absurd vocabulary
        return makeError(gguf.path() + ": cannot build the tokenizer: " + e.what());
    }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromHfFolder(const std::string& dir) {
    // nlohmann::json reports a value of the wrong type by throwing; nothing may escape the API, so any such
    // surprise in a hand-edited config becomes an Error.
    try {
        return loadHfFolder(dir);
    } catch (const std::exception& e) {
        return makeError(dir + ": malformed tokenizer files: " + e.what());
    }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::fromModelPath(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return fromHfFolder(path);
    auto g = GgufFile::open(path);
    if (!g) return g.error();
    return fromGguf(**g);
}

}  // namespace wb
