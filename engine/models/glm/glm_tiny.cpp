#include "models/glm/glm_tiny.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/safetensors_writer.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/unicode_tables.h"

namespace wb {

using nlohmann::json;

namespace {

Result<void> writeText(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) return makeError(path + ": cannot write");
    return {};
}

Result<void> writeTokenizer(const std::string& dir, bool withTemplate) {
    json vocab = json::object();
    const auto byteMap = gpt2ByteToCodepoint();
    for (int b = 0; b < 256; ++b) {
        std::string piece;
        unicode::appendUtf8(piece, byteMap[size_t(b)]);
        vocab[piece] = b;
    }
    const char* specials[] = {"[gMASK]",          "<sop>",           "<|system|>",         "<|user|>",
                              "<|assistant|>",    "<|endoftext|>",   "<|begin_of_image|>", "<|end_of_image|>",
                              "<|image|>",        "<|begin_of_video|>", "<|end_of_video|>", "<think>", "</think>"};
    json added = json::array();
    for (int i = 0; i < int(std::size(specials)); ++i) {
        // <think> and </think> are ordinary added tokens in GLM's tokenizer (not special): they print.
        const bool special = i < 11;
        added.push_back({{"id", 256 + i}, {"content", specials[i]}, {"special", special}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"single_word", false}});
    }
    json tj = {{"added_tokens", added},
               {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
               {"decoder", {{"type", "ByteLevel"}}},
               {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
    WB_TRY(writeText(dir + "/tokenizer.json", tj.dump()));
    json tc = {{"eos_token", "<|endoftext|>"}, {"add_bos_token", false}};
    if (withTemplate) tc["chat_template"] = tinyGlmChatTemplate();
    return writeText(dir + "/tokenizer_config.json", tc.dump(2));
}

std::vector<uint8_t> randomF32(std::mt19937& rng, int64_t n, float scale, float offset) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<uint8_t> bytes(size_t(n) * 4);
    for (int64_t i = 0; i < n; ++i) {
        const float v = offset + d(rng);
        std::memcpy(bytes.data() + i * 4, &v, 4);
    }
    return bytes;
}

}  // namespace

const char* tinyGlmChatTemplate() {
    return "[gMASK]<sop>"
           "{%- for m in messages -%}"
           "{%- if m.role == 'system' -%}<|system|>{{ '\\n' }}{{ m.content }}"
           "{%- elif m.role == 'user' -%}<|user|>{{ '\\n' }}"
           "{%- if m.content is string -%}{{ m.content }}"
           "{%- else -%}{%- for part in m.content -%}"
           "{%- if part.type == 'image' -%}<|begin_of_image|><|image|><|end_of_image|>"
           "{%- elif part.type == 'text' -%}{{ part.text }}{%- endif -%}"
           "{%- endfor -%}{%- endif -%}"
           "{%- elif m.role == 'assistant' -%}<|assistant|>{{ '\\n' }}{{ m.content }}"
           "{%- endif -%}"
           "{%- endfor -%}"
           "{%- if add_generation_prompt -%}<|assistant|>{{ '\\n' }}"
           "{%- if enable_thinking is defined and not enable_thinking -%}<think></think>{%- endif -%}"
           "{%- endif -%}";
}

std::string tinyGlmConfigJson(bool vision) {
    json text = {{"vocab_size", kTinyGlmVocab},    {"hidden_size", 64},          {"intermediate_size", 96},
                 {"num_hidden_layers", 2},         {"num_attention_heads", 4},   {"num_key_value_heads", 2},
                 {"max_position_embeddings", 8192}, {"rms_norm_eps", 1e-5},       {"hidden_act", "silu"},
                 {"partial_rotary_factor", 0.5},   {"rope_theta", 10000.0},      {"attention_bias", true},
                 {"tie_word_embeddings", false}};
    // Inside the vocabulary, as GLM's own configs (<|endoftext|>): without it Transformers takes the family's
    // default, 151329, and refuses to build a 300-row embedding with it.
    text["pad_token_id"] = kTinyGlmEndOfText;
    if (!vision) {
        text["architectures"] = {"Glm4ForCausalLM"};
        text["model_type"] = "glm4";
        text["head_dim"] = 16;
        text["eos_token_id"] = {kTinyGlmEndOfText};
        return text.dump(2);
    }
    text["rope_scaling"] = {{"type", "default"}, {"mrope_section", {2, 1, 1}}};
    text["model_type"] = "glm4v_text";
    json v = {{"depth", 2},           {"hidden_size", 32},         {"num_heads", 2},         {"patch_size", 14},
              {"temporal_patch_size", 2}, {"spatial_merge_size", 2}, {"in_channels", 3},   {"image_size", 56},
              {"out_hidden_size", 64}, {"intermediate_size", 48}, {"rms_norm_eps", 1e-5}, {"attention_bias", false},
              {"hidden_act", "silu"}};
    json c = {{"architectures", {"Glm4vForConditionalGeneration"}},
              {"model_type", "glm4v"},
              {"text_config", text},
              {"vision_config", v},
              {"image_token_id", kTinyGlmImage},
              {"image_start_token_id", kTinyGlmBeginImage},
              {"image_end_token_id", kTinyGlmEndImage},
              {"video_start_token_id", kTinyGlmBeginVideo},
              {"video_end_token_id", kTinyGlmEndVideo}};
    return c.dump(2);
}

Result<void> writeTinyGlmCheckpoint(const std::string& dir, const TinyGlmOptions& o) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return makeError(dir + ": cannot create the folder (" + ec.message() + ")");
    WB_TRY(writeText(dir + "/config.json", tinyGlmConfigJson(o.vision)));
    WB_TRY(writeText(dir + "/generation_config.json",
                     "{\"eos_token_id\": [" + std::to_string(kTinyGlmEndOfText) + ", " +
                             std::to_string(kTinyGlmUser) + "]}"));
    WB_TRY(writeTokenizer(dir, o.chatTemplate));
    if (o.vision)
        WB_TRY(writeText(dir + "/preprocessor_config.json",
                         R"({"size": {"shortest_edge": 3136, "longest_edge": 50176}, "patch_size": 14,
 "temporal_patch_size": 2, "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
 "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Glm4vImageProcessor"})"));
    std::mt19937 rng(o.seed);
    SafetensorsWriter w;
    Result<void> status;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
        if (!status.ok()) return;
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        status = w.addTensor(name, DType::F32, shape, randomF32(rng, n, scale, offset));
    };
    const int64_t V = kTinyGlmVocab;
    const std::string T = o.vision ? (o.newNames ? "model.language_model." : "model.") : "model.";
    const std::string Vn = o.newNames ? "model.visual." : "visual.";
    add(T + "embed_tokens.weight", {V, 64}, 1.0f);
    for (int l = 0; l < 2; ++l) {
        const std::string p = T + "layers." + std::to_string(l) + ".";
        for (const char* norm : {"input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm",
                                 "post_mlp_layernorm"})
            add(p + norm + ".weight", {64}, 0.1f, 1.0f);
        add(p + "self_attn.q_proj.weight", {64, 64}, 0.15f);
        add(p + "self_attn.q_proj.bias", {64}, 0.1f);
        add(p + "self_attn.k_proj.weight", {32, 64}, 0.15f);
        add(p + "self_attn.k_proj.bias", {32}, 0.1f);
        add(p + "self_attn.v_proj.weight", {32, 64}, 0.15f);
        add(p + "self_attn.v_proj.bias", {32}, 0.1f);
        add(p + "self_attn.o_proj.weight", {64, 64}, 0.15f);
        add(p + "mlp.gate_up_proj.weight", {192, 64}, 0.15f);
        add(p + "mlp.down_proj.weight", {64, 96}, 0.15f);
    }
    add(T + "norm.weight", {64}, 0.1f, 1.0f);
    add("lm_head.weight", {V, 64}, 0.2f);
    if (o.vision) {
        add(Vn + "patch_embed.proj.weight", {32, 3, 2, 14, 14}, 0.05f);
        add(Vn + "patch_embed.proj.bias", {32}, 0.1f);
        add(Vn + "post_conv_layernorm.weight", {32}, 0.1f, 1.0f);
        add(Vn + "embeddings.position_embedding.weight", {16, 32}, 0.5f);
        for (int b = 0; b < 2; ++b) {
            const std::string p = Vn + "blocks." + std::to_string(b) + ".";
            add(p + "norm1.weight", {32}, 0.1f, 1.0f);
            add(p + "norm2.weight", {32}, 0.1f, 1.0f);
            add(p + "attn.qkv.weight", {96, 32}, 0.2f);
            add(p + "attn.proj.weight", {32, 32}, 0.2f);
            add(p + "mlp.gate_proj.weight", {64, 32}, 0.2f);
            add(p + "mlp.up_proj.weight", {64, 32}, 0.2f);
            add(p + "mlp.down_proj.weight", {32, 64}, 0.2f);
        }
        add(Vn + "post_layernorm.weight", {32}, 0.1f, 1.0f);
        add(Vn + "downsample.weight", {64, 32, 2, 2}, 0.1f);
        add(Vn + "downsample.bias", {64}, 0.1f);
        add(Vn + "merger.proj.weight", {64, 64}, 0.15f);
        add(Vn + "merger.post_projection_norm.weight", {64}, 0.1f, 1.0f);
        add(Vn + "merger.post_projection_norm.bias", {64}, 0.1f);
        add(Vn + "merger.gate_proj.weight", {48, 64}, 0.15f);
        add(Vn + "merger.up_proj.weight", {48, 64}, 0.15f);
        add(Vn + "merger.down_proj.weight", {64, 48}, 0.15f);
    }
    WB_TRY(status);
    return w.writeSharded(dir, o.shards);
}

}  // namespace wb
