#include "models/whisper/whisper_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "audio/whisper_ggml.h"
#include "backend/cpu/cpu_ops.h"
#include "core/dtype.h"
#include "formats/safetensors.h"

namespace wb::whisper {

namespace {

using Getter = std::function<Result<std::vector<float>>(const std::string& name, int64_t elements)>;

WeightMatrix matrixFrom(const std::string& name, const std::vector<float>& v, int64_t rows, int64_t cols) {
    WeightMatrix w;
    w.name = name;
    w.dtype = DType::F32;
    w.rows = rows;
    w.cols = cols;
    w.owned.resize(v.size() * 4);
    std::memcpy(w.owned.data(), v.data(), w.owned.size());
    w.data = w.owned.data();
    return w;
}

// GPT-2's byte-level alphabet back to bytes (vocab.json stores each byte as a printable code point).
std::map<uint32_t, uint8_t> byteDecoder() {
    std::vector<int> bs;
    for (int b = 33; b < 127; ++b) bs.push_back(b);
    for (int b = 161; b < 173; ++b) bs.push_back(b);
    for (int b = 174; b < 256; ++b) bs.push_back(b);
    std::vector<int> cs = bs;
    int n = 0;
    for (int b = 0; b < 256; ++b)
        if (std::find(bs.begin(), bs.end(), b) == bs.end()) bs.push_back(b), cs.push_back(256 + n++);
    std::map<uint32_t, uint8_t> out;
    for (size_t i = 0; i < bs.size(); ++i) out[uint32_t(cs[i])] = uint8_t(bs[i]);
    return out;
}

bool decodeByteLevel(const std::string& s, const std::map<uint32_t, uint8_t>& dec, std::string& out) {
    out.clear();
    for (size_t i = 0; i < s.size();) {
        const uint8_t c = uint8_t(s[i]);
        uint32_t cp = 0;
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + size_t(len) > s.size()) return false;
        cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
        for (int j = 1; j < len; ++j) cp = (cp << 6) | (uint8_t(s[i + size_t(j)]) & 0x3f);
        auto it = dec.find(cp);
        if (it == dec.end()) return false;
        out.push_back(char(it->second));
        i += size_t(len);
    }
    return true;
}

void layerNorm(const float* x, const Norm& n, int64_t rows, int64_t d, float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * d;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < d; ++i) mean += xr[i];
        mean /= double(d);
        for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
        var /= double(d);
        const float inv = float(1.0 / std::sqrt(var + 1e-5));
        float* o = out + r * d;
        for (int64_t i = 0; i < d; ++i) o[i] = (xr[i] - float(mean)) * inv * n.w[size_t(i)] + n.b[size_t(i)];
    }
}

void gelu(float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * float(M_SQRT1_2)));
}

void linear(const Linear& l, const float* x, int64_t m, float* y, ThreadPool& pool) {
    cpu::matmul(l.w, x, m, y, pool);
    if (!l.b.empty())
        for (int64_t r = 0; r < m; ++r)
            for (int64_t i = 0; i < l.w.rows; ++i) y[r * l.w.rows + i] += l.b[size_t(i)];
}

struct Names {
    // Maps the role of a tensor to its name in the file's layout.
    std::function<std::string(const std::string&)> global;
    std::function<std::string(bool enc, int layer, const std::string&)> layer;
};

Names hfNames() {
    static const std::map<std::string, std::string> g = {{"enc.pos", "model.encoder.embed_positions.weight"},
                                                         {"conv1.w", "model.encoder.conv1.weight"},
                                                         {"conv1.b", "model.encoder.conv1.bias"},
                                                         {"conv2.w", "model.encoder.conv2.weight"},
                                                         {"conv2.b", "model.encoder.conv2.bias"},
                                                         {"enc.ln.w", "model.encoder.layer_norm.weight"},
                                                         {"enc.ln.b", "model.encoder.layer_norm.bias"},
                                                         {"tok", "model.decoder.embed_tokens.weight"},
                                                         {"dec.pos", "model.decoder.embed_positions.weight"},
                                                         {"dec.ln.w", "model.decoder.layer_norm.weight"},
                                                         {"dec.ln.b", "model.decoder.layer_norm.bias"}};
    static const std::map<std::string, std::string> l = {{"attn_ln.w", "self_attn_layer_norm.weight"},
                                                         {"attn_ln.b", "self_attn_layer_norm.bias"},
                                                         {"q.w", "self_attn.q_proj.weight"},
                                                         {"q.b", "self_attn.q_proj.bias"},
                                                         {"k.w", "self_attn.k_proj.weight"},
                                                         {"v.w", "self_attn.v_proj.weight"},
                                                         {"v.b", "self_attn.v_proj.bias"},
                                                         {"o.w", "self_attn.out_proj.weight"},
                                                         {"o.b", "self_attn.out_proj.bias"},
                                                         {"cross_ln.w", "encoder_attn_layer_norm.weight"},
                                                         {"cross_ln.b", "encoder_attn_layer_norm.bias"},
                                                         {"cq.w", "encoder_attn.q_proj.weight"},
                                                         {"cq.b", "encoder_attn.q_proj.bias"},
                                                         {"ck.w", "encoder_attn.k_proj.weight"},
                                                         {"cv.w", "encoder_attn.v_proj.weight"},
                                                         {"cv.b", "encoder_attn.v_proj.bias"},
                                                         {"co.w", "encoder_attn.out_proj.weight"},
                                                         {"co.b", "encoder_attn.out_proj.bias"},
                                                         {"mlp_ln.w", "final_layer_norm.weight"},
                                                         {"mlp_ln.b", "final_layer_norm.bias"},
                                                         {"fc1.w", "fc1.weight"},
                                                         {"fc1.b", "fc1.bias"},
                                                         {"fc2.w", "fc2.weight"},
                                                         {"fc2.b", "fc2.bias"}};
    return {[](const std::string& r) { return g.at(r); },
            [](bool enc, int i, const std::string& r) {
                return std::string(enc ? "model.encoder.layers." : "model.decoder.layers.") + std::to_string(i) + "." +
                       l.at(r);
            }};
}

Names ggmlNames() {
    static const std::map<std::string, std::string> g = {{"enc.pos", "encoder.positional_embedding"},
                                                         {"conv1.w", "encoder.conv1.weight"},
                                                         {"conv1.b", "encoder.conv1.bias"},
                                                         {"conv2.w", "encoder.conv2.weight"},
                                                         {"conv2.b", "encoder.conv2.bias"},
                                                         {"enc.ln.w", "encoder.ln_post.weight"},
                                                         {"enc.ln.b", "encoder.ln_post.bias"},
                                                         {"tok", "decoder.token_embedding.weight"},
                                                         {"dec.pos", "decoder.positional_embedding"},
                                                         {"dec.ln.w", "decoder.ln.weight"},
                                                         {"dec.ln.b", "decoder.ln.bias"}};
    static const std::map<std::string, std::string> l = {{"attn_ln.w", "attn_ln.weight"},
                                                         {"attn_ln.b", "attn_ln.bias"},
                                                         {"q.w", "attn.query.weight"},
                                                         {"q.b", "attn.query.bias"},
                                                         {"k.w", "attn.key.weight"},
                                                         {"v.w", "attn.value.weight"},
                                                         {"v.b", "attn.value.bias"},
                                                         {"o.w", "attn.out.weight"},
                                                         {"o.b", "attn.out.bias"},
                                                         {"cross_ln.w", "cross_attn_ln.weight"},
                                                         {"cross_ln.b", "cross_attn_ln.bias"},
                                                         {"cq.w", "cross_attn.query.weight"},
                                                         {"cq.b", "cross_attn.query.bias"},
                                                         {"ck.w", "cross_attn.key.weight"},
                                                         {"cv.w", "cross_attn.value.weight"},
                                                         {"cv.b", "cross_attn.value.bias"},
                                                         {"co.w", "cross_attn.out.weight"},
                                                         {"co.b", "cross_attn.out.bias"},
                                                         {"mlp_ln.w", "mlp_ln.weight"},
                                                         {"mlp_ln.b", "mlp_ln.bias"},
                                                         {"fc1.w", "mlp.0.weight"},
                                                         {"fc1.b", "mlp.0.bias"},
                                                         {"fc2.w", "mlp.2.weight"},
                                                         {"fc2.b", "mlp.2.bias"}};
    return {[](const std::string& r) { return g.at(r); },
            [](bool enc, int i, const std::string& r) {
                return std::string(enc ? "encoder.blocks." : "decoder.blocks.") + std::to_string(i) + "." + l.at(r);
            }};
}

Result<void> loadWeights(WhisperModel& m, const Names& names, const Getter& get) {
    const auto& c = m.m_cfg;
    const int64_t d = c.dModel;
#define WB_GET(var, name, n)        \
    std::vector<float> var;         \
    {                               \
        auto r_ = get(name, n);     \
        if (!r_) return r_.error(); \
        var = std::move(*r_);       \
    }
    auto lin = [&](Linear& l, const std::string& wName, const std::string& bName, int64_t rows,
                   int64_t cols) -> Result<void> {
        WB_GET(w, wName, rows * cols);
        l.w = matrixFrom(wName, w, rows, cols);
        if (!bName.empty()) {
            WB_GET(b, bName, rows);
            l.b = std::move(b);
        }
        return {};
    };
    auto norm = [&](Norm& n, const std::string& w, const std::string& b) -> Result<void> {
        WB_GET(wv, w, d);
        WB_GET(bv, b, d);
        n.w = std::move(wv);
        n.b = std::move(bv);
        return {};
    };
    const auto& G = names.global;
    WB_TRY(lin(m.m_conv1, G("conv1.w"), G("conv1.b"), d, int64_t(c.nMels) * 3));
    WB_TRY(lin(m.m_conv2, G("conv2.w"), G("conv2.b"), d, d * 3));
    {
        WB_GET(p, G("enc.pos"), int64_t(c.audioCtx) * d);
        m.m_encPos = std::move(p);
    }
    WB_TRY(norm(m.m_encLn, G("enc.ln.w"), G("enc.ln.b")));
    auto attn = [&](AttentionWeights& a, bool enc, int i, const std::string& p) -> Result<void> {
        const auto& L = names.layer;
        WB_TRY(lin(a.q, L(enc, i, p + "q.w"), L(enc, i, p + "q.b"), d, d));
        WB_TRY(lin(a.k, L(enc, i, p + "k.w"), "", d, d));
        WB_TRY(lin(a.v, L(enc, i, p + "v.w"), L(enc, i, p + "v.b"), d, d));
        WB_TRY(lin(a.o, L(enc, i, p + "o.w"), L(enc, i, p + "o.b"), d, d));
        return {};
    };
    m.m_enc.resize(size_t(c.encLayers));
    for (int i = 0; i < c.encLayers; ++i) {
        auto& l = m.m_enc[size_t(i)];
        const auto& L = names.layer;
        WB_TRY(norm(l.attnLn, L(true, i, "attn_ln.w"), L(true, i, "attn_ln.b")));
        WB_TRY(attn(l.attn, true, i, ""));
        WB_TRY(norm(l.mlpLn, L(true, i, "mlp_ln.w"), L(true, i, "mlp_ln.b")));
        WB_TRY(lin(l.fc1, L(true, i, "fc1.w"), L(true, i, "fc1.b"), c.encFfn, d));
        WB_TRY(lin(l.fc2, L(true, i, "fc2.w"), L(true, i, "fc2.b"), d, c.encFfn));
    }
    {
        WB_GET(t, G("tok"), int64_t(c.vocab) * d);
        m.m_tokEmb = matrixFrom(G("tok"), t, c.vocab, d);
        m.m_tokEmbF32 = std::move(t);
        WB_GET(p, G("dec.pos"), int64_t(c.textCtx) * d);
        m.m_decPos = std::move(p);
    }
    m.m_dec.resize(size_t(c.decLayers));
    for (int i = 0; i < c.decLayers; ++i) {
        auto& l = m.m_dec[size_t(i)];
        const auto& L = names.layer;
        WB_TRY(norm(l.attnLn, L(false, i, "attn_ln.w"), L(false, i, "attn_ln.b")));
        WB_TRY(attn(l.attn, false, i, ""));
        WB_TRY(norm(l.crossLn, L(false, i, "cross_ln.w"), L(false, i, "cross_ln.b")));
        WB_TRY(attn(l.cross, false, i, "c"));
        WB_TRY(norm(l.mlpLn, L(false, i, "mlp_ln.w"), L(false, i, "mlp_ln.b")));
        WB_TRY(lin(l.fc1, L(false, i, "fc1.w"), L(false, i, "fc1.b"), c.decFfn, d));
        WB_TRY(lin(l.fc2, L(false, i, "fc2.w"), L(false, i, "fc2.b"), d, c.decFfn));
    }
    WB_TRY(norm(m.m_decLn, G("dec.ln.w"), G("dec.ln.b")));
#undef WB_GET
    return {};
}

Result<void> checkConfig(const WhisperConfig& c, const std::string& what) {
    auto ok = [](int v, int max) { return v > 0 && v <= max; };
    if (!ok(c.dModel, 8192) || !ok(c.encLayers, 256) || !ok(c.decLayers, 256) || !ok(c.encHeads, 256) ||
        !ok(c.decHeads, 256) || c.dModel % c.encHeads || c.dModel % c.decHeads || !ok(c.encFfn, 65536) ||
        !ok(c.decFfn, 65536) || !ok(c.nMels, 512) || !ok(c.audioCtx, 1 << 14) || !ok(c.textCtx, 1 << 14))
        return makeError(what + ": implausible Whisper dimensions");
    if (c.audioCtx != 1500) return makeError(what + ": max_source_positions must be 1500 (30 s of features)");
    return setSpecialTokens(const_cast<WhisperConfig&>(c));
}

Result<std::unique_ptr<WhisperModel>> loadGgml(const std::string& path, int numThreads) {
    auto f = audio::loadWhisperGgml(path);
    if (!f) return f.error();
    auto m = std::make_unique<WhisperModel>();
    auto& c = m->m_cfg;
    const auto& hp = f->hparams;
    if (hp.nAudioState != hp.nTextState) return makeError(path + ": audio and text widths differ");
    c.nMels = hp.nMels, c.dModel = hp.nAudioState, c.encLayers = hp.nAudioLayer, c.encHeads = hp.nAudioHead;
    c.encFfn = 4 * c.dModel, c.audioCtx = hp.nAudioCtx, c.decLayers = hp.nTextLayer, c.decHeads = hp.nTextHead;
    c.decFfn = 4 * c.dModel, c.textCtx = hp.nTextCtx, c.vocab = hp.nVocab;
    WB_TRY(checkConfig(c, path));
    if (f->tensors.empty()) return makeError(path + ": the file holds no weights (a vocabulary/filterbank-only file)");
    m->m_vocab = f->vocab;
    m->m_vocab.resize(size_t(c.eot));
    const auto& bytes = *f->bytes;
    auto get = [&](const std::string& name, int64_t n) -> Result<std::vector<float>> {
        const auto* t = f->find(name);
        if (!t) return makeError(path + ": tensor " + name + " is missing");
        if (t->numElements() != n)
            return makeError(path + ": tensor " + name + " has " + std::to_string(t->numElements()) + " values (" +
                             std::to_string(n) + " expected)");
        auto v = audio::ggmlTensorToFloat(bytes, *t);
        if (!v) return makeError(path + ": " + v.error().message);
        return v;
    };
    WB_TRY(loadWeights(*m, ggmlNames(), get));
    m->m_pool = std::make_unique<ThreadPool>(numThreads);
    return m;
}

Result<std::unique_ptr<WhisperModel>> loadHf(const std::string& dir, int numThreads) {
    std::ifstream cf(dir + "/config.json");
    if (!cf) return makeError(dir + ": no config.json");
    nlohmann::json j = nlohmann::json::parse(cf, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return makeError(dir + "/config.json: not valid JSON");
    auto m = std::make_unique<WhisperModel>();
    auto& c = m->m_cfg;
    auto geti = [&](const char* k, int& dst) {
        if (j.contains(k) && j[k].is_number_integer()) dst = j[k].get<int>();
    };
    geti("num_mel_bins", c.nMels), geti("d_model", c.dModel), geti("encoder_layers", c.encLayers);
    geti("encoder_attention_heads", c.encHeads), geti("encoder_ffn_dim", c.encFfn);
    geti("max_source_positions", c.audioCtx), geti("decoder_layers", c.decLayers);
    geti("decoder_attention_heads", c.decHeads), geti("decoder_ffn_dim", c.decFfn);
    geti("max_target_positions", c.textCtx), geti("vocab_size", c.vocab);
    WB_TRY(checkConfig(c, dir + "/config.json"));
    auto st = SafetensorsSet::openFolder(dir);
    if (!st) return st.error();
    auto get = [&](const std::string& name, int64_t n) -> Result<std::vector<float>> {
        const TensorInfo* t = (*st)->find(name);
        if (!t) return makeError(dir + ": tensor " + name + " is missing");
        if (t->numElements() != n)
            return makeError(dir + ": tensor " + name + " has shape " + t->shapeString() + " (" + std::to_string(n) +
                             " values expected)");
        std::vector<float> out(static_cast<size_t>(n));
        if (t->dtype == DType::F32)
            std::memcpy(out.data(), t->data, size_t(n) * 4);
        else if (t->dtype == DType::F16 || t->dtype == DType::BF16)
            for (int64_t i = 0; i < n; ++i) {
                uint16_t h;
                std::memcpy(&h, t->data + i * 2, 2);
                out[size_t(i)] = t->dtype == DType::F16 ? fp16ToFp32(h) : bf16ToFp32(h);
            }
        else
            return makeError(dir + ": tensor " + name + " is not F32, F16 or BF16");
        return out;
    };
    WB_TRY(loadWeights(*m, hfNames(), get));
    // vocab.json: byte-level tokens (ids below <|endoftext|>) back to their bytes.
    std::ifstream vf(dir + "/vocab.json");
    if (!vf) return makeError(dir + ": no vocab.json");
    nlohmann::json vj = nlohmann::json::parse(vf, nullptr, false);
    if (!vj.is_object()) return makeError(dir + "/vocab.json: not a JSON object");
    m->m_vocab.assign(size_t(c.eot), std::string());
    const auto dec = byteDecoder();
    for (auto it = vj.begin(); it != vj.end(); ++it) {
        if (!it.value().is_number_integer()) continue;
        const int id = it.value().get<int>();
        if (id < 0 || id >= c.eot) continue;
        std::string bytes;
        if (!decodeByteLevel(it.key(), dec, bytes))
            return makeError(dir + "/vocab.json: token " + it.key() + " is not byte-level");
        m->m_vocab[size_t(id)] = std::move(bytes);
    }
    m->m_pool = std::make_unique<ThreadPool>(numThreads);
    return m;
}

}  // namespace

const std::vector<std::string>& whisperLanguages() {
    static const std::vector<std::string> langs = {
        "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt",  "tr", "pl", "ca", "nl", "ar", "sv", "it", "id",
        "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro",  "da", "hu", "ta", "no", "th", "ur", "hr", "bg",
        "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv",  "bn", "sr", "az", "sl", "kn", "et", "mk", "br",
        "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",  "gl", "mr", "pa", "si", "km", "sn", "yo", "so",
        "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi",  "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt",
        "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};
    return langs;
}

Result<void> setSpecialTokens(WhisperConfig& c) {
    if (c.vocab < 51864 || c.vocab > 51866)
        return makeError("Whisper vocabulary of " + std::to_string(c.vocab) +
                         " tokens (51864 English-only, 51865 multilingual or 51866 large-v3 expected)");
    const bool ml = c.vocab >= 51865;
    c.numLanguages = ml ? c.vocab - 51765 - 1 : 0;  // 99 or 100
    c.eot = 50256 + (ml ? 1 : 0);
    c.sot = c.eot + 1;
    c.langBegin = c.sot + 1;
    c.translate = 50357 + (ml ? 1 : 0) + std::max(0, c.numLanguages - 99);
    c.transcribe = c.translate + 1;
    c.solm = c.translate + 2;
    c.prev = c.translate + 3;
    c.noSpeech = c.translate + 4;
    c.noTimestamps = c.translate + 5;
    c.timestampBegin = c.translate + 6;
    return {};
}

Result<std::unique_ptr<WhisperModel>> WhisperModel::load(const std::string& path, int numThreads) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return loadHf(path, numThreads);
    if (!std::filesystem::exists(path, ec)) return makeError(path + ": no such file or folder");
    return loadGgml(path, numThreads);
}

std::string WhisperModel::tokenText(int id) const {
    if (id < 0 || size_t(id) >= m_vocab.size()) return {};
    return m_vocab[size_t(id)];
}

std::string WhisperModel::tokenName(int id) const {
    const auto& c = m_cfg;
    if (id < c.eot) return tokenText(id);
    if (id >= c.timestampBegin) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "<|%.2f|>", (id - c.timestampBegin) * 0.02);
        return buf;
    }
    if (id >= c.langBegin && id < c.langBegin + c.numLanguages && size_t(id - c.langBegin) < whisperLanguages().size())
        return "<|" + whisperLanguages()[size_t(id - c.langBegin)] + "|>";
    if (id == c.eot) return "<|endoftext|>";
    if (id == c.sot) return "<|startoftranscript|>";
    if (id == c.translate) return "<|translate|>";
    if (id == c.transcribe) return "<|transcribe|>";
    if (id == c.solm) return "<|startoflm|>";
    if (id == c.prev) return "<|startofprev|>";
    if (id == c.noSpeech) return "<|nospeech|>";
    if (id == c.noTimestamps) return "<|notimestamps|>";
    return "<|" + std::to_string(id) + "|>";
}

void WhisperModel::attention(const float* q, int nq, const float* k, const float* v, int nk, int heads, bool causal,
                             int qPos0, float* out) {
    const int d = m_cfg.dModel, hd = d / heads;
    const float scale = 1.0f / std::sqrt(float(hd));
    m_pool->parallelFor(int64_t(nq) * heads, 8, [&](int64_t begin, int64_t end, int) {
        std::vector<float> s(static_cast<size_t>(nk));
        for (int64_t idx = begin; idx < end; ++idx) {
            const int i = int(idx / heads), h = int(idx % heads);
            const int len = causal ? std::min(nk, qPos0 + i + 1) : nk;
            const float* qi = q + size_t(i) * size_t(d) + size_t(h) * size_t(hd);
            for (int j = 0; j < len; ++j)
                s[size_t(j)] = scale * cpu::dot(qi, k + size_t(j) * size_t(d) + size_t(h) * size_t(hd), hd);
            const float mx = *std::max_element(s.begin(), s.begin() + len);
            const float sum = cpu::expShiftSum(s.data(), mx, len);
            float* o = out + size_t(i) * size_t(d) + size_t(h) * size_t(hd);
            std::fill(o, o + hd, 0.0f);
            for (int j = 0; j < len; ++j)
                cpu::axpy(s[size_t(j)] / sum, v + size_t(j) * size_t(d) + size_t(h) * size_t(hd), o, hd);
        }
    });
}

std::vector<float> WhisperModel::encode(const std::vector<float>& mel) {
    const auto& c = m_cfg;
    const int d = c.dModel, T = 2 * c.audioCtx, T2 = c.audioCtx, cin = c.nMels;
    ThreadPool& pool = *m_pool;
    // conv1 (k 3, pad 1) as im2col x matmul: column ci*3 + k of row t is mel[ci][t + k - 1].
    std::vector<float> cols(size_t(T) * size_t(cin) * 3, 0.0f);
    for (int t = 0; t < T; ++t)
        for (int ci = 0; ci < cin; ++ci)
            for (int k = 0; k < 3; ++k) {
                const int src = t + k - 1;
                if (src >= 0 && src < T)
                    cols[(size_t(t) * size_t(cin) + size_t(ci)) * 3 + size_t(k)] =
                        mel[size_t(ci) * size_t(T) + size_t(src)];
            }
    std::vector<float> y1(size_t(T) * size_t(d));
    linear(m_conv1, cols.data(), T, y1.data(), pool);
    gelu(y1.data(), int64_t(y1.size()));
    // conv2 (k 3, stride 2, pad 1): row t2 reads rows 2 t2 - 1 .. 2 t2 + 1 of y1.
    cols.assign(size_t(T2) * size_t(d) * 3, 0.0f);
    for (int t = 0; t < T2; ++t)
        for (int k = 0; k < 3; ++k) {
            const int src = 2 * t + k - 1;
            if (src < 0 || src >= T) continue;
            for (int ci = 0; ci < d; ++ci)
                cols[(size_t(t) * size_t(d) + size_t(ci)) * 3 + size_t(k)] = y1[size_t(src) * size_t(d) + size_t(ci)];
        }
    std::vector<float> x(size_t(T2) * size_t(d));
    linear(m_conv2, cols.data(), T2, x.data(), pool);
    gelu(x.data(), int64_t(x.size()));
    for (size_t i = 0; i < x.size(); ++i) x[i] += m_encPos[i];
    std::vector<float> h(x.size()), q(x.size()), k(x.size()), v(x.size()), a(x.size()), o(x.size());
    for (const auto& l : m_enc) {
        layerNorm(x.data(), l.attnLn, T2, d, h.data());
        linear(l.attn.q, h.data(), T2, q.data(), pool);
        linear(l.attn.k, h.data(), T2, k.data(), pool);
        linear(l.attn.v, h.data(), T2, v.data(), pool);
        attention(q.data(), T2, k.data(), v.data(), T2, c.encHeads, false, 0, a.data());
        linear(l.attn.o, a.data(), T2, o.data(), pool);
        for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
        layerNorm(x.data(), l.mlpLn, T2, d, h.data());
        std::vector<float> f(size_t(T2) * size_t(c.encFfn));
        linear(l.fc1, h.data(), T2, f.data(), pool);
        gelu(f.data(), int64_t(f.size()));
        linear(l.fc2, f.data(), T2, o.data(), pool);
        for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    }
    layerNorm(x.data(), m_encLn, T2, d, x.data());
    return x;
}

WhisperModel::Session WhisperModel::startSession(const std::vector<float>& enc) {
    const auto& c = m_cfg;
    Session s;
    s.selfK.assign(size_t(c.decLayers), std::vector<float>(size_t(c.textCtx) * size_t(c.dModel)));
    s.selfV = s.selfK;
    auto cross = std::make_shared<CrossCache>();
    cross->k.resize(size_t(c.decLayers));
    cross->v.resize(size_t(c.decLayers));
    for (int i = 0; i < c.decLayers; ++i) {
        cross->k[size_t(i)].resize(enc.size());
        cross->v[size_t(i)].resize(enc.size());
        linear(m_dec[size_t(i)].cross.k, enc.data(), c.audioCtx, cross->k[size_t(i)].data(), *m_pool);
        linear(m_dec[size_t(i)].cross.v, enc.data(), c.audioCtx, cross->v[size_t(i)].data(), *m_pool);
    }
    s.cross = std::move(cross);
    return s;
}

void WhisperModel::copySession(Session& dst, const Session& src) const {
    const size_t rows = size_t(src.length) * size_t(m_cfg.dModel);
    const size_t full = size_t(m_cfg.textCtx) * size_t(m_cfg.dModel);
    dst.selfK.resize(src.selfK.size());
    dst.selfV.resize(src.selfV.size());
    for (size_t l = 0; l < src.selfK.size(); ++l) {
        dst.selfK[l].resize(full);
        dst.selfV[l].resize(full);
        std::copy_n(src.selfK[l].begin(), rows, dst.selfK[l].begin());
        std::copy_n(src.selfV[l].begin(), rows, dst.selfV[l].begin());
    }
    dst.cross = src.cross;
    dst.length = src.length;
}

bool WhisperModel::embedToken(int token, int pos, float* x) const {
    const int d = m_cfg.dModel;
    if (token < 0 || token >= m_cfg.vocab) return false;
    for (int j = 0; j < d; ++j)
        x[j] = m_tokEmbF32[size_t(token) * size_t(d) + size_t(j)] + m_decPos[size_t(pos) * size_t(d) + size_t(j)];
    return true;
}

void WhisperModel::crossAndMlp(int li, const CrossCache& cross, int n, std::vector<float>& x, std::vector<float>& h,
                               std::vector<float>& q, std::vector<float>& a, std::vector<float>& o,
                               std::vector<float>& f) {
    const auto& c = m_cfg;
    const int d = c.dModel;
    const auto& l = m_dec[size_t(li)];
    layerNorm(x.data(), l.crossLn, n, d, h.data());
    linear(l.cross.q, h.data(), n, q.data(), *m_pool);
    attention(q.data(), n, cross.k[size_t(li)].data(), cross.v[size_t(li)].data(), c.audioCtx, c.decHeads, false, 0,
              a.data());
    linear(l.cross.o, a.data(), n, o.data(), *m_pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    layerNorm(x.data(), l.mlpLn, n, d, h.data());
    linear(l.fc1, h.data(), n, f.data(), *m_pool);
    gelu(f.data(), int64_t(f.size()));
    linear(l.fc2, f.data(), n, o.data(), *m_pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
}

Result<std::vector<std::vector<float>>> WhisperModel::decodeStep(const std::vector<Session*>& ss,
                                                                const std::vector<int>& tokens) {
    const auto& c = m_cfg;
    const int d = c.dModel, n = int(ss.size());
    if (n == 0 || tokens.size() != ss.size()) return makeError("whisper decodeStep: one token per session");
    const int pos0 = ss[0]->length;
    for (const Session* s : ss) {
        if (!s->cross || s->cross != ss[0]->cross)
            return makeError("whisper decodeStep: the sessions must share one encoder output");
        if (s->length != pos0) return makeError("whisper decodeStep: the sessions must be equally long");
    }
    if (pos0 + 1 > c.textCtx) return makeError("whisper decode: past the text context");
    std::vector<float> x(size_t(n) * size_t(d));
    for (int i = 0; i < n; ++i)
        if (!embedToken(tokens[size_t(i)], pos0, x.data() + size_t(i) * size_t(d)))
            return makeError("whisper decode: token id out of range");
    std::vector<float> h(x.size()), q(x.size()), kv(x.size()), a(x.size()), o(x.size()),
        f(size_t(n) * size_t(c.decFfn));
    const CrossCache& cross = *ss[0]->cross;
    for (int li = 0; li < c.decLayers; ++li) {
        const auto& l = m_dec[size_t(li)];
        layerNorm(x.data(), l.attnLn, n, d, h.data());
        linear(l.attn.q, h.data(), n, q.data(), *m_pool);
        linear(l.attn.k, h.data(), n, kv.data(), *m_pool);
        for (int i = 0; i < n; ++i)
            std::copy_n(kv.begin() + ptrdiff_t(i) * d, d, ss[size_t(i)]->selfK[size_t(li)].begin() + ptrdiff_t(pos0) * d);
        linear(l.attn.v, h.data(), n, kv.data(), *m_pool);
        for (int i = 0; i < n; ++i)
            std::copy_n(kv.begin() + ptrdiff_t(i) * d, d, ss[size_t(i)]->selfV[size_t(li)].begin() + ptrdiff_t(pos0) * d);
        // Self-attention over each session's own cache (one query row each).
        for (int i = 0; i < n; ++i)
            attention(q.data() + size_t(i) * size_t(d), 1, ss[size_t(i)]->selfK[size_t(li)].data(),
                      ss[size_t(i)]->selfV[size_t(li)].data(), pos0 + 1, c.decHeads, true, pos0,
                      a.data() + size_t(i) * size_t(d));
        linear(l.attn.o, a.data(), n, o.data(), *m_pool);
        for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
        // Cross-attention: the same keys and values for every row.
        crossAndMlp(li, cross, n, x, h, q, a, o, f);
    }
    for (Session* s : ss) s->length += 1;
    std::vector<float> last(x.size());
    layerNorm(x.data(), m_decLn, n, d, last.data());
    std::vector<float> all(size_t(n) * size_t(c.vocab));
    cpu::matmul(m_tokEmb, last.data(), n, all.data(), *m_pool);
    std::vector<std::vector<float>> out(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i)
        out[size_t(i)].assign(all.begin() + ptrdiff_t(i) * c.vocab, all.begin() + ptrdiff_t(i + 1) * c.vocab);
    return out;
}

Result<std::vector<float>> WhisperModel::decode(Session& s, const std::vector<int>& tokens) {
    const auto& c = m_cfg;
    const int d = c.dModel;
    if (tokens.empty()) return makeError("whisper decode: no tokens");
    if (!s.cross) return makeError("whisper decode: a session without an encoder output");
    if (s.length + int(tokens.size()) > c.textCtx) return makeError("whisper decode: past the text context");
    const int n = int(tokens.size()), pos0 = s.length;
    std::vector<float> x(size_t(n) * size_t(d));
    for (int i = 0; i < n; ++i)
        if (!embedToken(tokens[size_t(i)], pos0 + i, x.data() + size_t(i) * size_t(d)))
            return makeError("whisper decode: token id out of range");
    std::vector<float> h(x.size()), q(x.size()), a(x.size()), o(x.size()), f(size_t(n) * size_t(c.decFfn));
    for (int li = 0; li < c.decLayers; ++li) {
        const auto& l = m_dec[size_t(li)];
        layerNorm(x.data(), l.attnLn, n, d, h.data());
        linear(l.attn.q, h.data(), n, q.data(), *m_pool);
        float* kc = s.selfK[size_t(li)].data() + size_t(pos0) * size_t(d);
        float* vc = s.selfV[size_t(li)].data() + size_t(pos0) * size_t(d);
        linear(l.attn.k, h.data(), n, kc, *m_pool);
        linear(l.attn.v, h.data(), n, vc, *m_pool);
        attention(q.data(), n, s.selfK[size_t(li)].data(), s.selfV[size_t(li)].data(), pos0 + n, c.decHeads, true, pos0,
                  a.data());
        linear(l.attn.o, a.data(), n, o.data(), *m_pool);
        for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
        crossAndMlp(li, *s.cross, n, x, h, q, a, o, f);
    }
    s.length += n;
    std::vector<float> last(static_cast<size_t>(d));
    layerNorm(x.data() + size_t(n - 1) * size_t(d), m_decLn, 1, d, last.data());
    std::vector<float> logits(size_t(c.vocab));
    cpu::matmul(m_tokEmb, last.data(), 1, logits.data(), *m_pool);
    return logits;
}

}  // namespace wb::whisper
