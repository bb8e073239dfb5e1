// GLM memory plans from config.json alone: the parameter count, weight bytes per precision, KV bytes per token
// and the per-GPU share at tensor-parallel degree 2 of the real GLM-4.1V-9B-Thinking / AutoGLM-Phone-9B config,
// checked against figures worked out by hand from the tensor shapes GlmModel::load reads.
#include <QtTest>
#include <filesystem>
#include <fstream>

#include "fixtures.h"
#include "models/glm/glm_summary.h"

namespace fs = std::filesystem;

namespace {

// config.json of zai-org/GLM-4.1V-9B-Thinking; AutoGLM-Phone-9B ships the same shapes.
const char* kGlm41v9bConfig = R"({
  "architectures": ["Glm4vForConditionalGeneration"],
  "model_type": "glm4v",
  "attention_bias": true,
  "attention_dropout": 0.0,
  "pad_token_id": 151329,
  "eos_token_id": [151329, 151336, 151338, 151348],
  "image_start_token_id": 151339,
  "image_end_token_id": 151340,
  "video_start_token_id": 151341,
  "video_end_token_id": 151342,
  "image_token_id": 151343,
  "video_token_id": 151344,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 13696,
  "max_position_embeddings": 65536,
  "num_attention_heads": 32,
  "num_hidden_layers": 40,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "partial_rotary_factor": 0.5,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.53.0.dev0",
  "use_cache": true,
  "vocab_size": 151552,
  "text_config": {
    "model_type": "glm4v_text",
    "attention_bias": true,
    "attention_dropout": 0.0,
    "eos_token_id": [151329, 151336, 151338, 151348],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "head_dim": 128,
    "image_token_id": 151343,
    "initializer_range": 0.02,
    "intermediate_size": 13696,
    "max_position_embeddings": 65536,
    "num_attention_heads": 32,
    "num_hidden_layers": 40,
    "num_key_value_heads": 2,
    "pad_token_id": 151329,
    "partial_rotary_factor": 0.5,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"rope_type": "default", "mrope_section": [8, 12, 12]},
    "rope_theta": 10000.0,
    "tie_word_embeddings": false,
    "torch_dtype": "bfloat16",
    "use_cache": true,
    "vocab_size": 151552
  },
  "vision_config": {
    "model_type": "glm4v",
    "attention_bias": false,
    "attention_dropout": 0.0,
    "depth": 24,
    "hidden_act": "silu",
    "hidden_size": 1536,
    "image_size": 336,
    "in_channels": 3,
    "initializer_range": 0.02,
    "intermediate_size": 13696,
    "num_heads": 12,
    "out_hidden_size": 4096,
    "patch_size": 14,
    "rms_norm_eps": 1e-05,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2
  }
})";

// The text-only GLM-4-9B-0414 shapes (Glm4ForCausalLM).
const char* kGlm4TextConfig = R"({
  "architectures": ["Glm4ForCausalLM"],
  "model_type": "glm4",
  "attention_bias": true,
  "head_dim": 128,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "intermediate_size": 13696,
  "max_position_embeddings": 32768,
  "num_attention_heads": 32,
  "num_hidden_layers": 40,
  "num_key_value_heads": 2,
  "partial_rotary_factor": 0.5,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "vocab_size": 151552
})";

// ---- GLM-4.1V-9B by hand (dim 4096, 40 layers, 32 heads, 2 KV heads of 128, ffn 13696, vocab 151552) ----
// Text matrices: embed_tokens and lm_head 151552×4096 = 620,756,992 each;
//   per layer q 4096×4096 = 16,777,216, k and v 256×4096 = 1,048,576 each, o 16,777,216,
//   gate_up 27392×4096 = 112,197,632, down 4096×13696 = 56,098,816: 203,948,032; × 40 = 8,157,921,280.
//   Total 1,241,513,984 + 8,157,921,280 = 9,399,435,264.
// Text vectors: per layer q/k/v biases 4096 + 256 + 256 = 4,608 and four norms 16,384: 20,992; × 40 = 839,680;
//   final norm 4,096. Total 843,776.
constexpr int64_t kTextMatrix = 9'399'435'264, kTextVector = 843'776;
constexpr int64_t kTextParams = 9'400'279'040;
// Text matrix rows: 151552 × 2 + 40 × (4096 + 256 + 256 + 4096 + 27392 + 4096 = 40,192) = 1,910,784.
constexpr int64_t kTextRows = 1'910'784;
// Vision matrices (hidden 1536, out 4096, merger 13696, depth 24, patch dim 3·2·14·14 = 1176):
//   patch_embed 1536×1176 = 1,806,336; per block qkv 4608×1536 = 7,077,888, proj 1536×1536 = 2,359,296,
//   gate/up/down 4096×1536 = 6,291,456 each: 28,311,552; × 24 = 679,477,248; downsample 4096×(1536·2·2) =
//   25,165,824; merger proj 4096×4096 = 16,777,216; merger gate/up/down 13696×4096 = 56,098,816 each:
//   168,296,448. Total 891,523,072.
// Vision vectors: patch bias 1536, post_conv_layernorm 1536, position embedding 24·24 × 1536 = 884,736,
//   per block norm1 + norm2 3072 × 24 = 73,728, post_layernorm 1536, downsample bias 4096, post_projection_norm
//   weight + bias 8192. Total 975,360.
constexpr int64_t kVisionMatrix = 891'523'072, kVisionVector = 975'360;
constexpr int64_t kVisionParams = 892'498'432;
// Vision rows: 1536 + 24 × (4608 + 1536 + 4096 + 4096 + 1536 = 15,872) + 4096 + 4096 + 13696·2 + 4096 = 422,144.
constexpr int64_t kVisionRows = 422'144;
constexpr int64_t kParams = 10'292'777'472;  // ≈ 10.3 B, the published GLM-4.1V-9B size
// Bytes: matrices at the precision (int8: + one f32 scale per row), vectors f32.
//   fp16/bf16: 2 × 10,290,958,336 + 4 × 1,819,136 = 20,589,193,216 (19.18 GiB)
//   fp32:      4 × 10,292,777,472                   = 41,171,109,888
//   int8:      the text model's matrices int8 with their row scales, the vision tower's BF16 (GlmModel::load):
//              (10,290,958,336 - 891,523,072) + 4 × (2,332,928 - 422,144) + 2 × 891,523,072 + 4 × 1,819,136
//              = 11,197,401,088 (10.43 GiB)
constexpr int64_t kFp16Bytes = 20'589'193'216, kFp32Bytes = 41'171'109'888, kInt8Bytes = 11'197'401'088;
// KV cache: 40 layers × 2 × 2 KV heads × 128 × 4 bytes.
constexpr int64_t kKvBytesPerToken = 81'920;
// One GPU at TP = 2: embedding replicated (620,756,992), lm_head half the vocabulary (310,378,496), every layer's
//   q/k/v/o/gate_up/down halved (101,974,016 × 40 = 4,078,960,640): text matrices 5,010,096,128; text vectors
//   keep the norms (659,456) and half the biases (92,160): 751,616; the vision tower is replicated.
//   fp16: 2 × (5,010,096,128 + 891,523,072) + 4 × (751,616 + 975,360) = 11,810,146,304 (11.0 GiB)
//   rows: 151552 + 75776 + 40 × (2048 + 128 + 128 + 4096 + 13696 + 4096 = 24,192) = 1,195,008 text + 422,144
//   int8: text int8 5,010,096,128 + 4 × 1,195,008 + vision BF16 2 × 891,523,072 + 4 × 1,726,976 = 6,804,830,208
//   KV: one KV head per rank: 40,960 bytes per token.
constexpr int64_t kTp2TextMatrix = 5'010'096'128, kTp2TextVector = 751'616, kTp2TextRows = 1'195'008;
constexpr int64_t kTp2Fp16Bytes = 11'810'146'304, kTp2Int8Bytes = 6'804'830'208, kTp2KvBytesPerToken = 40'960;

}  // namespace

class TestGlmSummary : public QObject {
    Q_OBJECT

private slots:
    void glm41v9bParameters() {
        auto s = wb::summarizeGlmJson(kGlm41v9bConfig, "config.json");
        QVERIFY2(s.ok(), s.ok() ? "" : s.error().message.c_str());
        QVERIFY(s->config.hasVision);
        QCOMPARE(s->text.matrixElements, kTextMatrix);
        QCOMPARE(s->text.vectorElements, kTextVector);
        QCOMPARE(s->text.matrixRows, kTextRows);
        QCOMPARE(s->vision.matrixElements, kVisionMatrix);
        QCOMPARE(s->vision.vectorElements, kVisionVector);
        QCOMPARE(s->vision.matrixRows, kVisionRows);
        QCOMPARE(s->textParameters(), kTextParams);
        QCOMPARE(s->visionParameters(), kVisionParams);
        QCOMPARE(s->numParameters(), kParams);
        // The published range: ~10.3 B in all, ~9.4 B of them the language model.
        QVERIFY(s->numParameters() > 10'200'000'000 && s->numParameters() < 10'400'000'000);
        QVERIFY(s->textParameters() > 9'300'000'000 && s->textParameters() < 9'500'000'000);
    }

    void glm41v9bBytes() {
        auto s = wb::summarizeGlmJson(kGlm41v9bConfig, "config.json");
        QVERIFY(s.ok());
        const auto& b = s->weightBytesByPrecision;
        QCOMPARE(b.at("fp32"), kFp32Bytes);
        QCOMPARE(b.at("fp16"), kFp16Bytes);
        QCOMPARE(b.at("bf16"), kFp16Bytes);
        QCOMPARE(b.at("int8"), kInt8Bytes);
        QVERIFY(s->fileType && *s->fileType == wb::DType::BF16);  // torch_dtype
        QCOMPARE(b.at("native"), kFp16Bytes);
        // FP16 ≈ 2 bytes a parameter (norms and biases stay f32); INT8 a little over half of that (the vision
        // tower's 0.9 B parameters stay BF16).
        QVERIFY(std::abs(double(b.at("fp16")) / double(2 * kParams) - 1.0) < 0.001);
        const double ratio = double(b.at("int8")) / double(b.at("fp16"));
        QVERIFY2(ratio > 0.53 && ratio < 0.56, qPrintable(QString::number(ratio)));
        QCOMPARE(s->kvBytesPerToken, kKvBytesPerToken);
    }

    void glm41v9bTensorParallel() {
        auto s = wb::summarizeGlmJson(kGlm41v9bConfig, "config.json");
        QVERIFY(s.ok());
        QCOMPARE(int(s->tensorParallel.size()), 2);
        const wb::GlmShardPlan* one = s->shardPlan(1);
        QVERIFY(one);
        QCOMPARE(one->weightBytesByPrecision.at("fp16"), kFp16Bytes);
        QCOMPARE(one->kvBytesPerToken, kKvBytesPerToken);
        const wb::GlmShardPlan* two = s->shardPlan(2);
        QVERIFY(two);
        QCOMPARE(two->text.matrixElements, kTp2TextMatrix);
        QCOMPARE(two->text.vectorElements, kTp2TextVector);
        QCOMPARE(two->text.matrixRows, kTp2TextRows);
        QCOMPARE(two->vision.parameters(), kVisionParams);  // replicated
        QCOMPARE(two->weightBytesByPrecision.at("fp16"), kTp2Fp16Bytes);
        QCOMPARE(two->weightBytesByPrecision.at("int8"), kTp2Int8Bytes);
        QCOMPARE(two->kvHeadsPerRank, int64_t(1));
        QCOMPARE(two->kvBytesPerToken, kTp2KvBytesPerToken);
        QVERIFY(two->weightBytesByPrecision.at("fp16") < 24'000'000'000);  // fits a 24 GB card's weights
        // Half of everything split, plus the replicated embedding and vision tower.
        QVERIFY(two->weightBytesByPrecision.at("fp16") > kFp16Bytes / 2);
        QVERIFY(!s->shardPlan(4));
        QVERIFY(wb::glmShardPlan(s->config, 4).ok());  // 32 heads, 2 KV heads replicated over 4 ranks
        QCOMPARE(wb::glmShardPlan(s->config, 4)->kvHeadsPerRank, int64_t(1));
        auto bad = wb::glmShardPlan(s->config, 3);
        QVERIFY(!bad.ok());
        QVERIFY(bad.error().message.find("32 attention heads") != std::string::npos);
    }

    void textOnlyGlm4() {
        auto s = wb::summarizeGlmJson(kGlm4TextConfig, "config.json");
        QVERIFY2(s.ok(), s.ok() ? "" : s.error().message.c_str());
        QVERIFY(!s->config.hasVision);
        QCOMPARE(s->textParameters(), kTextParams);  // the same language model
        QCOMPARE(s->visionParameters(), int64_t(0));
        QCOMPARE(s->weightBytesByPrecision.at("fp16"), 2 * kTextMatrix + 4 * kTextVector);
        // Tied embeddings: no lm_head on one device; at TP = 2 each rank gets its slice of the head.
        wb::GlmConfig tied = s->config;
        tied.text.tiedEmbeddings = true;
        QCOMPARE(wb::glmTextWeights(tied, 1).matrixElements, kTextMatrix - 151552LL * 4096);
        QCOMPARE(wb::glmTextWeights(tied, 2).matrixElements, kTp2TextMatrix);
    }

    void folderReadsConfigOnly() {
        // config.json alone, and a safetensors file that is not one: the summary never opens it.
        const std::string dir = wbtest::tempDir() + "/glm_summary_folder";
        fs::remove_all(dir);
        fs::create_directories(dir);
        std::ofstream(dir + "/config.json") << kGlm41v9bConfig;
        std::ofstream(dir + "/model-00001-of-00005.safetensors") << "not a safetensors file";
        auto s = wb::summarizeGlmFolder(dir);
        QVERIFY2(s.ok(), s.ok() ? "" : s.error().message.c_str());
        QCOMPARE(s->numParameters(), kParams);
        QCOMPARE(s->config.eosTokenIds.size(), size_t(4));
        auto missing = wb::summarizeGlmFolder(dir + "/nowhere");
        QVERIFY(!missing.ok());
        QVERIFY(missing.error().message.find("config.json") != std::string::npos);
    }
};

QTEST_GUILESS_MAIN(TestGlmSummary)
#include "tst_glm_summary.moc"
