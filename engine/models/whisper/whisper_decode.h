// Whisper decoding over WhisperModel: language detection and greedy transcription with segment timestamps, with
// the logit rules Transformers' generate() applies for Whisper (SuppressTokensAtBegin, then
// WhisperTimeStampLogitsProcessor: timestamps in pairs and never decreasing, the first token a timestamp of at
// most 1 s, a timestamp forced when their total probability beats every text token) and OpenAI's reference.
#pragma once

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
};

/// The language token of the most likely language (one decoder step on <|startoftranscript|>).
Result<int> detectLanguage(WhisperModel& m, const std::vector<float>& encoderOut);

/// Transcribes one 30 s window of features [nMels][3000].
Result<WindowTranscript> transcribeWindow(WhisperModel& m, const std::vector<float>& mel, const DecodeOptions& o);

/// Greedy-decodes from an encoder output (the part of transcribeWindow after the encoder).
Result<WindowTranscript> decodeGreedy(WhisperModel& m, const std::vector<float>& encoderOut, const DecodeOptions& o);

}  // namespace wb::whisper
