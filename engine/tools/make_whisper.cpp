// wb-make-whisper: a tiny random Whisper written in both layouts from the same weights, for the parity tests
// (docs/VOICE.md): a Hugging Face folder (config.json, model.safetensors, vocab.json + merges.txt,
// added_tokens.json, tokenizer_config.json, preprocessor_config.json, generation_config.json) that
// Transformers' WhisperForConditionalGeneration loads, and whisper.cpp's ggml-*.bin. The vocabulary (the real
// 51865-id multilingual layout whisper.cpp expects) is taken from a whisper.cpp file such as the fixtures'
// for-tests-ggml-tiny.bin.
//
//   wb-make-whisper --vocab-from for-tests-ggml-tiny.bin --hf DIR --ggml FILE [--d 64] [--layers 2] [--heads 2]
//                   [--mels 80] [--seed 1]
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "audio/log_mel.h"
#include "audio/whisper_ggml.h"
#include "formats/safetensors_writer.h"
#include "models/whisper/whisper_model.h"

using nlohmann::json;

namespace {

struct Tensor {
    std::string hf, ggml;
    std::vector<int64_t> shape;  // PyTorch order
    std::vector<float> data;
};

std::string byteLevel(const std::string& bytes) {
    static std::map<int, std::string> enc = [] {
        std::vector<int> bs;
        for (int b = 33; b < 127; ++b) bs.push_back(b);
        for (int b = 161; b < 173; ++b) bs.push_back(b);
        for (int b = 174; b < 256; ++b) bs.push_back(b);
        std::vector<int> cs = bs;
        int n = 0;
        for (int b = 0; b < 256; ++b)
            if (std::find(bs.begin(), bs.end(), b) == bs.end()) bs.push_back(b), cs.push_back(256 + n++);
        std::map<int, std::string> m;
        for (size_t i = 0; i < bs.size(); ++i) {
            const int cp = cs[i];
            std::string u;
            if (cp < 0x80)
                u.push_back(char(cp));
            else
                u.push_back(char(0xc0 | (cp >> 6))), u.push_back(char(0x80 | (cp & 0x3f)));
            m[bs[i]] = u;
        }
        return m;
    }();
    std::string out;
    for (unsigned char c : bytes) out += enc.at(c);
    return out;
}

void writeI32(std::ofstream& f, int32_t v) {
    f.write(reinterpret_cast<const char*>(&v), 4);
}

int fail(const std::string& m) {
    std::fprintf(stderr, "wb-make-whisper: %s\n", m.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::string> opt = {
        {"d", "64"}, {"layers", "2"}, {"heads", "2"}, {"mels", "80"}, {"seed", "1"}};
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k.rfind("--", 0) != 0) return fail("unexpected argument " + k);
        opt[k.substr(2)] = argv[i + 1];
    }
    if (!opt.count("vocab-from") || !opt.count("hf") || !opt.count("ggml"))
        return fail(
            "usage: wb-make-whisper --vocab-from WHISPER.bin --hf DIR --ggml FILE [--d N] [--layers N] "
            "[--heads N] [--mels 80|128] [--seed S]");
    const int d = std::stoi(opt["d"]), layers = std::stoi(opt["layers"]), heads = std::stoi(opt["heads"]);
    const int mels = std::stoi(opt["mels"]), ffn = 4 * d, audioCtx = 1500, textCtx = 448, vocab = 51865;
    if (d <= 0 || d % heads || layers <= 0 || (mels != 80 && mels != 128)) return fail("invalid sizes");
    auto src = wb::audio::loadWhisperGgml(opt["vocab-from"]);
    if (!src) return fail(src.error().message);
    if (src->hparams.nVocab != vocab) return fail("--vocab-from must be a multilingual model (51865 ids)");
    wb::whisper::WhisperConfig cfg;
    cfg.vocab = vocab;
    (void)wb::whisper::setSpecialTokens(cfg);

    std::mt19937_64 rng(std::stoull(opt["seed"]));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<Tensor> ts;
    auto add = [&](std::string hf, std::string gg, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
        int64_t n = 1;
        for (int64_t s : shape) n *= s;
        Tensor t{std::move(hf), std::move(gg), std::move(shape), std::vector<float>(size_t(n))};
        for (float& v : t.data) v = offset + scale * normal(rng);
        ts.push_back(std::move(t));
        return &ts.back();
    };
    // Weights scaled so that activations stay O(1) and the logits spread (a random model's argmax is then stable
    // across implementations).
    const float ws = 1.0f / std::sqrt(float(d));
    add("model.encoder.conv1.weight", "encoder.conv1.weight", {d, mels, 3}, 1.0f / std::sqrt(3.0f * mels));
    add("model.encoder.conv1.bias", "encoder.conv1.bias", {d}, 0.02f);
    add("model.encoder.conv2.weight", "encoder.conv2.weight", {d, d, 3}, 1.0f / std::sqrt(3.0f * d));
    add("model.encoder.conv2.bias", "encoder.conv2.bias", {d}, 0.02f);
    {
        // Sinusoidal positions as OpenAI's model builds them.
        Tensor* p = add("model.encoder.embed_positions.weight", "encoder.positional_embedding", {audioCtx, d}, 0.0f);
        const int half = d / 2;
        const double inc = std::log(10000.0) / (half - 1);
        for (int t = 0; t < audioCtx; ++t)
            for (int i = 0; i < half; ++i) {
                const double a = t * std::exp(-inc * i);
                p->data[size_t(t) * size_t(d) + size_t(i)] = float(std::sin(a));
                p->data[size_t(t) * size_t(d) + size_t(half + i)] = float(std::cos(a));
            }
    }
    auto block = [&](bool enc, int i) {
        const std::string hp =
            std::string(enc ? "model.encoder.layers." : "model.decoder.layers.") + std::to_string(i) + ".";
        const std::string gp = std::string(enc ? "encoder.blocks." : "decoder.blocks.") + std::to_string(i) + ".";
        auto attn = [&](const std::string& h, const std::string& g) {
            add(hp + h + ".q_proj.weight", gp + g + ".query.weight", {d, d}, ws);
            add(hp + h + ".q_proj.bias", gp + g + ".query.bias", {d}, 0.02f);
            add(hp + h + ".k_proj.weight", gp + g + ".key.weight", {d, d}, ws);
            add(hp + h + ".v_proj.weight", gp + g + ".value.weight", {d, d}, ws);
            add(hp + h + ".v_proj.bias", gp + g + ".value.bias", {d}, 0.02f);
            add(hp + h + ".out_proj.weight", gp + g + ".out.weight", {d, d}, ws);
            add(hp + h + ".out_proj.bias", gp + g + ".out.bias", {d}, 0.02f);
        };
        auto ln = [&](const std::string& h, const std::string& g) {
            add(hp + h + ".weight", gp + g + ".weight", {d}, 0.1f, 1.0f);
            add(hp + h + ".bias", gp + g + ".bias", {d}, 0.02f);
        };
        ln("self_attn_layer_norm", "attn_ln");
        attn("self_attn", "attn");
        if (!enc) {
            ln("encoder_attn_layer_norm", "cross_attn_ln");
            attn("encoder_attn", "cross_attn");
        }
        ln("final_layer_norm", "mlp_ln");
        add(hp + "fc1.weight", gp + "mlp.0.weight", {ffn, d}, ws);
        add(hp + "fc1.bias", gp + "mlp.0.bias", {ffn}, 0.02f);
        add(hp + "fc2.weight", gp + "mlp.2.weight", {d, ffn}, 1.0f / std::sqrt(float(ffn)));
        add(hp + "fc2.bias", gp + "mlp.2.bias", {d}, 0.02f);
    };
    ts.reserve(size_t(64 + 40 * layers));
    for (int i = 0; i < layers; ++i) block(true, i);
    add("model.encoder.layer_norm.weight", "encoder.ln_post.weight", {d}, 0.1f, 1.0f);
    add("model.encoder.layer_norm.bias", "encoder.ln_post.bias", {d}, 0.02f);
    add("model.decoder.embed_tokens.weight", "decoder.token_embedding.weight", {vocab, d}, 0.5f);
    add("model.decoder.embed_positions.weight", "decoder.positional_embedding", {textCtx, d}, 1.0f);
    for (int i = 0; i < layers; ++i) block(false, i);
    add("model.decoder.layer_norm.weight", "decoder.ln.weight", {d}, 0.1f, 1.0f);
    add("model.decoder.layer_norm.bias", "decoder.ln.bias", {d}, 0.02f);

    // --- Hugging Face folder.
    const std::string dir = opt["hf"];
    std::filesystem::create_directories(dir);
    wb::SafetensorsWriter w;
    for (const auto& t : ts) {
        std::vector<uint8_t> bytes(t.data.size() * 4);
        std::memcpy(bytes.data(), t.data.data(), bytes.size());
        auto r = w.addTensor(t.hf, wb::DType::F32, t.shape, std::move(bytes));
        if (!r) return fail(r.error().message);
    }
    if (auto r = w.write(dir + "/model.safetensors"); !r) return fail(r.error().message);
    json lang = json::object();
    for (size_t i = 0; i < wb::whisper::whisperLanguages().size() && int(i) < cfg.numLanguages; ++i)
        lang["<|" + wb::whisper::whisperLanguages()[i] + "|>"] = cfg.langBegin + int(i);
    json config = {{"architectures", {"WhisperForConditionalGeneration"}},
                   {"model_type", "whisper"},
                   {"d_model", d},
                   {"encoder_layers", layers},
                   {"encoder_attention_heads", heads},
                   {"encoder_ffn_dim", ffn},
                   {"decoder_layers", layers},
                   {"decoder_attention_heads", heads},
                   {"decoder_ffn_dim", ffn},
                   {"num_mel_bins", mels},
                   {"max_source_positions", audioCtx},
                   {"max_target_positions", textCtx},
                   {"vocab_size", vocab},
                   {"activation_function", "gelu"},
                   {"scale_embedding", false},
                   {"tie_word_embeddings", true},
                   {"pad_token_id", cfg.eot},
                   {"bos_token_id", cfg.eot},
                   {"eos_token_id", cfg.eot},
                   {"decoder_start_token_id", cfg.sot},
                   {"begin_suppress_tokens", {220, cfg.eot}},
                   {"suppress_tokens", json::array()},
                   {"use_cache", true},
                   {"torch_dtype", "float32"},
                   {"layerdrop", 0.0},
                   {"dropout", 0.0}};
    json gen = {{"decoder_start_token_id", cfg.sot},
                {"eos_token_id", cfg.eot},
                {"pad_token_id", cfg.eot},
                {"bos_token_id", cfg.eot},
                {"no_timestamps_token_id", cfg.noTimestamps},
                {"prev_sot_token_id", cfg.prev},
                {"is_multilingual", true},
                {"lang_to_id", lang},
                {"task_to_id", {{"transcribe", cfg.transcribe}, {"translate", cfg.translate}}},
                {"max_initial_timestamp_index", 50},
                {"begin_suppress_tokens", {220, cfg.eot}},
                {"suppress_tokens", json::array()},
                {"max_length", textCtx}};
    json pre = {{"feature_extractor_type", "WhisperFeatureExtractor"},
                {"feature_size", mels},
                {"sampling_rate", 16000},
                {"hop_length", 160},
                {"chunk_length", 30},
                {"n_fft", 400},
                {"n_samples", 480000},
                {"nb_max_frames", 3000},
                {"padding_side", "right"},
                {"padding_value", 0.0},
                {"return_attention_mask", false},
                {"processor_class", "WhisperProcessor"}};
    json vocabJson = json::object();
    for (size_t i = 0; i < src->vocab.size() && int(i) < cfg.eot; ++i) {
        if (src->vocab[i].empty()) continue;
        const std::string key = byteLevel(src->vocab[i]);
        if (!vocabJson.contains(key)) vocabJson[key] = int(i);
    }
    json added = json::object();
    wb::whisper::WhisperModel names;
    names.m_cfg = cfg;
    for (int id = cfg.eot; id < vocab; ++id) {
        if (id >= cfg.langBegin + cfg.numLanguages && id < cfg.translate) continue;
        added[names.tokenName(id)] = id;
    }
    json tokCfg = {{"tokenizer_class", "WhisperTokenizer"},
                   {"bos_token", "<|endoftext|>"},
                   {"eos_token", "<|endoftext|>"},
                   {"unk_token", "<|endoftext|>"},
                   {"pad_token", "<|endoftext|>"},
                   {"model_max_length", 1024},
                   {"errors", "replace"}};
    auto writeJson = [&](const std::string& name, const json& j) {
        std::ofstream f(dir + "/" + name);
        f << j.dump(1) << "\n";
        return bool(f);
    };
    if (!writeJson("config.json", config) || !writeJson("generation_config.json", gen) ||
        !writeJson("preprocessor_config.json", pre) || !writeJson("vocab.json", vocabJson) ||
        !writeJson("added_tokens.json", added) || !writeJson("tokenizer_config.json", tokCfg))
        return fail("cannot write into " + dir);
    {
        std::ofstream m(dir + "/merges.txt");
        m << "#version: 0.2\n";
    }

    // --- whisper.cpp's ggml file (all F32: ftype 0).
    std::ofstream g(opt["ggml"], std::ios::binary);
    if (!g) return fail("cannot write " + opt["ggml"]);
    writeI32(g, int32_t(wb::audio::kGgmlMagic));
    for (int v : {vocab, audioCtx, d, heads, layers, textCtx, d, heads, layers, mels, 0}) writeI32(g, v);
    const auto fb = wb::audio::whisperMelFilters(mels);
    writeI32(g, mels);
    writeI32(g, fb.nFreqs);
    g.write(reinterpret_cast<const char*>(fb.weights.data()), std::streamsize(fb.weights.size() * 4));
    writeI32(g, int32_t(src->vocab.size()));
    for (const auto& tok : src->vocab) {
        writeI32(g, int32_t(tok.size()));
        g.write(tok.data(), std::streamsize(tok.size()));
    }
    for (const auto& t : ts) {
        std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
        // whisper.cpp keeps conv biases as [1, d] tensors.
        if (t.ggml == "encoder.conv1.bias" || t.ggml == "encoder.conv2.bias") ne = {1, d};
        writeI32(g, int32_t(ne.size()));
        writeI32(g, int32_t(t.ggml.size()));
        writeI32(g, 0);
        for (int64_t e : ne) writeI32(g, int32_t(e));
        g.write(t.ggml.data(), std::streamsize(t.ggml.size()));
        g.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size() * 4));
    }
    if (!g) return fail("cannot write " + opt["ggml"]);
    std::printf("wrote %s and %s (%zu tensors)\n", dir.c_str(), opt["ggml"].c_str(), ts.size());
    return 0;
}
