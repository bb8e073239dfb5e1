// Whisper decoding over WhisperModel: language detection, then greedy decoding, beam search or sampling with
// segment timestamps, and the temperature fallback around them, as Transformers' WhisperForConditionalGeneration
// .generate does it (docs/VOICE.md):
// - logit rules: SuppressTokensAtBegin, the control tokens suppressed, WhisperTimeStampLogitsProcessor
//   (timestamps in pairs and never decreasing, the first token a timestamp of at most 1 s, a timestamp forced when
//   their total probability beats every text token);
// - beam search: Transformers' (2 * beams candidates per step from log_softmax of the raw logits with the rules'
//   masks, a hypothesis finished when <|endoftext|> is among the best `beams` candidates, its score the sum of
//   log-probabilities divided by its length, early stop when no running beam can beat the worst finished one);
// - fallback: temperatures 0.0, 0.2, ... 1.0, the next one tried while the compression ratio of the tokens (zlib,
//   2 bytes per token) is above 2.4 or the average log-probability below -1.0; a window whose no-speech probability
//   (<|nospeech|> after <|startoftranscript|>) is above 0.6 with a low average log-probability is silence.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "models/whisper/whisper_model.h"

namespace wb::whisper {

struct DecodeOptions {
    std::string language;    // "en", ...; empty: detected from the audio (multilingual models)
    bool timestamps = true;  // segment timestamps; false: <|notimestamps|> in the prompt
    bool applyRules = true;  // false: plain argmax, no logit rules (for tests against a plain reference loop)
    int maxTokens = 224;     // new tokens at most (the reference's sample_len: text context / 2)
    int beamSize = 1;        // > 1: beam search at temperature 0 (sampling always takes one sample)
    float temperature = 0;   // > 0: sampling from softmax(logits / temperature)
    uint64_t seed = 0;       // the sampler's seed (the same seed, the same text)
    const std::atomic<bool>* cancel = nullptr;  // set: the decoding stops with an error "cancelled"
};

/// Transformers' defaults (generation_config of the OpenAI checkpoints, and whisper.cpp's).
struct FallbackOptions {
    std::vector<float> temperatures = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};
    double compressionRatioThreshold = 2.4;  // <= 0: not checked
    double logprobThreshold = -1.0;
    double noSpeechThreshold = 0.6;  // <= 0: never silence
};

struct TranscriptSegment {
    double startSec = 0, endSec = 0;  // within the 30 s window
    std::string text;
};

struct WindowTranscript {
    std::string language;
    std::vector<int> prompt, tokens;  // tokens: what was generated, <|endoftext|> excluded
    std::vector<TranscriptSegment> segments;
    std::string text;
    bool endedWithEot = false;
    double avgLogprob = 0;        // Transformers': greedy and sampling: the mean log-probability of the tokens
                                  // (<|endoftext|> included) under the rules; beams: the hypothesis' score
    double compressionRatio = 0;  // of the tokens (<|endoftext|> included), as Transformers computes it
    double noSpeechProb = 0;      // softmax of the logits after <|startoftranscript|>, at <|nospeech|>
    float temperature = 0;        // of the decoding kept
    int attempts = 1;             // decodings tried (fallback)
    bool noSpeech = false;        // judged silence: tokens kept, text and segments empty
};

/// The language token of the most likely language (one decoder step on <|startoftranscript|>).
Result<int> detectLanguage(WhisperModel& m, const std::vector<float>& encoderOut);

/// Transcribes one 30 s window of features [nMels][3000] with the temperature fallback.
Result<WindowTranscript> transcribeWindow(WhisperModel& m, const std::vector<float>& mel, const DecodeOptions& o,
                                          const FallbackOptions& fallback = {});

/// One decoding from an encoder output, as `o` says (greedy, beams or sampling), no fallback.
Result<WindowTranscript> decodeOnce(WhisperModel& m, const std::vector<float>& encoderOut, const DecodeOptions& o);

/// Greedy-decodes from an encoder output (decodeOnce with one beam at temperature 0).
Result<WindowTranscript> decodeGreedy(WhisperModel& m, const std::vector<float>& encoderOut, const DecodeOptions& o);

/// Decodings at `fallback.temperatures` in turn until one passes the thresholds (the last one is kept).
Result<WindowTranscript> decodeWithFallback(WhisperModel& m, const std::vector<float>& encoderOut,
                                            const DecodeOptions& o, const FallbackOptions& fallback);

/// Transformers' compression ratio of generated tokens: raw bytes (2 per token for vocabularies below 65536,
/// little-endian) over their zlib-compressed size.
double tokenCompressionRatio(const std::vector<int>& tokens, int vocab);

}  // namespace wb::whisper
