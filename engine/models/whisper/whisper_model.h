// Whisper (OpenAI's encoder-decoder speech recogniser) on the CPU kernels: the same weights from a Hugging Face
// folder (WhisperForConditionalGeneration: config.json, model.safetensors, vocab.json) or whisper.cpp's ggml
// file. Encoder: two Conv1d + GELU (the second with stride 2), sinusoidal positions, pre-LayerNorm transformer
// blocks, a final LayerNorm. Decoder: token + learned position embeddings, causal self-attention over a KV cache,
// cross-attention over the encoder output, GELU MLP, final LayerNorm, logits against the token embedding.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/weight_matrix.h"
#include "core/result.h"
#include "core/thread_pool.h"

namespace wb::whisper {

struct WhisperConfig {
    int nMels = 80;
    int dModel = 0;
    int encLayers = 0, encHeads = 0, encFfn = 0, audioCtx = 1500;
    int decLayers = 0, decHeads = 0, decFfn = 0, textCtx = 448;
    int vocab = 0;
    // Special tokens, from the vocabulary size as whisper.cpp derives them (51864: English-only, 51865:
    // multilingual, 51866: large-v3 with 100 languages).
    int eot = 0, sot = 0, langBegin = 0, numLanguages = 0, translate = 0, transcribe = 0, solm = 0, prev = 0,
        noSpeech = 0, noTimestamps = 0, timestampBegin = 0;
    bool multilingual() const { return numLanguages > 0; }
};

/// Fills the special token ids from `vocab`; an error for a vocabulary too small to hold them.
Result<void> setSpecialTokens(WhisperConfig& c);

/// Language codes in token order (en, zh, de, ...), whisper.cpp's / OpenAI's table.
const std::vector<std::string>& whisperLanguages();

struct Linear {
    WeightMatrix w;
    std::vector<float> b;  // empty: no bias
};
struct Norm {
    std::vector<float> w, b;
};
struct AttentionWeights {
    Linear q, k, v, o;
};
struct EncoderLayer {
    Norm attnLn, mlpLn;
    AttentionWeights attn;
    Linear fc1, fc2;
};
struct DecoderLayer {
    Norm attnLn, crossLn, mlpLn;
    AttentionWeights attn, cross;
    Linear fc1, fc2;
};

class WhisperModel {
public:
    /// A Hugging Face folder or a whisper.cpp ggml file (by what `path` is).
    static Result<std::unique_ptr<WhisperModel>> load(const std::string& path, int numThreads = 0);

    const WhisperConfig& config() const { return m_cfg; }
    /// Bytes of token `id` (special and timestamp tokens give "").
    std::string tokenText(int id) const;
    /// "<|en|>", "<|0.00|>", ... for special tokens; the text otherwise.
    std::string tokenName(int id) const;

    /// Encoder output [audioCtx][dModel] for features [nMels][2 * audioCtx].
    std::vector<float> encode(const std::vector<float>& mel);

    /// Decoder state for one sequence over one encoder output.
    /// Cross-attention keys and values of one encoder output, shared by the sessions (beams) over it.
    struct CrossCache {
        std::vector<std::vector<float>> k, v;  // per layer [audioCtx][d]
    };
    struct Session {
        std::vector<std::vector<float>> selfK, selfV;  // per layer [textCtx][d]
        std::shared_ptr<const CrossCache> cross;
        int length = 0;
    };
    Session startSession(const std::vector<float>& encoderOut);
    /// `dst` becomes `src` (its first `src.length` positions copied, the cross cache shared); `dst` keeps its
    /// buffers when it has them, so a beam search reorders its beams without allocating.
    void copySession(Session& dst, const Session& src) const;
    /// Feeds `tokens` at the session's end; returns the logits of the last one [vocab].
    Result<std::vector<float>> decode(Session& s, const std::vector<int>& tokens);
    /// One token for each of several sessions of the same length over the same encoder output (the beams of a
    /// beam search): the weights are read once for all rows. Returns each session's logits [vocab].
    Result<std::vector<std::vector<float>>> decodeStep(const std::vector<Session*>& sessions,
                                                      const std::vector<int>& tokens);

    ThreadPool& pool() { return *m_pool; }

    // Loaded weights (public for the loaders in whisper_model.cpp).
    WhisperConfig m_cfg;
    Linear m_conv1, m_conv2;      // as matrices [d][cin * 3]
    std::vector<float> m_encPos;  // [audioCtx][d]
    std::vector<EncoderLayer> m_enc;
    Norm m_encLn;
    WeightMatrix m_tokEmb;  // [vocab][d], also the output projection
    std::vector<float> m_tokEmbF32;
    std::vector<float> m_decPos;  // [textCtx][d]
    std::vector<DecoderLayer> m_dec;
    Norm m_decLn;
    std::vector<std::string> m_vocab;  // raw bytes of the ordinary tokens
    std::unique_ptr<ThreadPool> m_pool;

private:
    void attention(const float* q, int nq, const float* k, const float* v, int nk, int heads, bool causal, int qPos0,
                   float* out);
    /// x row = token embedding + position embedding; false when the id is outside the vocabulary.
    bool embedToken(int token, int pos, float* x) const;
    /// Decoder layer li after its self-attention, for n rows of x over one encoder output: cross-attention and the
    /// MLP, each added to x. h, q, a, o hold n × d floats and f n × decFfn (scratch).
    void crossAndMlp(int li, const CrossCache& cross, int n, std::vector<float>& x, std::vector<float>& h,
                     std::vector<float>& q, std::vector<float>& a, std::vector<float>& o, std::vector<float>& f);
};

}  // namespace wb::whisper
