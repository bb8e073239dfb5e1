#include "models/whisper/whisper_decode.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace wb::whisper {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int argmax(const std::vector<float>& v) {
    return int(std::max_element(v.begin(), v.end()) - v.begin());
}

// WhisperTimeStampLogitsProcessor over `sampled` (the tokens generated so far, prompt excluded).
void applyTimestampRules(const WhisperConfig& c, const std::vector<int>& sampled, std::vector<float>& logits) {
    const int tsBegin = c.timestampBegin, vocab = c.vocab;
    logits[size_t(c.noTimestamps)] = kNegInf;
    const size_t n = sampled.size();
    const bool lastTs = n >= 1 && sampled[n - 1] >= tsBegin;
    const bool penultTs = n < 2 || sampled[n - 2] >= tsBegin;
    if (lastTs) {
        if (penultTs)
            std::fill(logits.begin() + tsBegin, logits.begin() + vocab, kNegInf);
        else
            std::fill(logits.begin(), logits.begin() + c.eot, kNegInf);
    }
    int lastTimestamp = -1;
    for (int t : sampled)
        if (t >= tsBegin) lastTimestamp = t;
    if (lastTimestamp >= 0) {
        const int upTo = (lastTs && !penultTs) ? lastTimestamp : lastTimestamp + 1;
        std::fill(logits.begin() + tsBegin, logits.begin() + std::min(upTo, vocab), kNegInf);
    }
    if (n == 0) {
        std::fill(logits.begin(), logits.begin() + tsBegin, kNegInf);
        const int lastAllowed = tsBegin + 50;  // max_initial_timestamp 1.0 s
        if (lastAllowed + 1 < vocab) std::fill(logits.begin() + lastAllowed + 1, logits.begin() + vocab, kNegInf);
    }
    // A timestamp when their total probability beats every single text token.
    float mx = kNegInf;
    for (float v : logits) mx = std::max(mx, v);
    if (mx == kNegInf) return;
    double sumAll = 0, sumTs = 0;
    float maxText = kNegInf;
    for (int i = 0; i < vocab; ++i) {
        const double e = std::exp(double(logits[size_t(i)]) - mx);
        sumAll += e;
        if (i >= tsBegin)
            sumTs += e;
        else
            maxText = std::max(maxText, logits[size_t(i)]);
    }
    const double logSumAll = std::log(sumAll) + mx;
    const double tsLogprob = sumTs > 0 ? std::log(sumTs) + mx - logSumAll : -INFINITY;
    const double maxTextLogprob = double(maxText) - logSumAll;
    if (tsLogprob > maxTextLogprob) std::fill(logits.begin(), logits.begin() + tsBegin, kNegInf);
}

}  // namespace

Result<int> detectLanguage(WhisperModel& m, const std::vector<float>& encoderOut) {
    const auto& c = m.config();
    if (!c.multilingual()) return makeError("an English-only Whisper model has no language to detect");
    auto s = m.startSession(encoderOut);
    auto logits = m.decode(s, {c.sot});
    if (!logits) return logits.error();
    int best = c.langBegin;
    for (int id = c.langBegin; id < c.langBegin + c.numLanguages; ++id)
        if ((*logits)[size_t(id)] > (*logits)[size_t(best)]) best = id;
    return best;
}

Result<WindowTranscript> decodeGreedy(WhisperModel& m, const std::vector<float>& enc, const DecodeOptions& o) {
    const auto& c = m.config();
    WindowTranscript out;
    std::vector<int> prompt = {c.sot};
    if (c.multilingual()) {
        int lang = -1;
        if (o.language.empty()) {
            auto l = detectLanguage(m, enc);
            if (!l) return l.error();
            lang = *l;
        } else {
            const auto& langs = whisperLanguages();
            auto it = std::find(langs.begin(), langs.end(), o.language);
            if (it == langs.end() || int(it - langs.begin()) >= c.numLanguages)
                return makeError("unknown language \"" + o.language + "\"");
            lang = c.langBegin + int(it - langs.begin());
        }
        out.language = whisperLanguages()[size_t(lang - c.langBegin)];
        prompt.push_back(lang);
        prompt.push_back(c.transcribe);
    } else {
        out.language = "en";
    }
    if (!o.timestamps) prompt.push_back(c.noTimestamps);
    out.prompt = prompt;
    auto s = m.startSession(enc);
    auto logits = m.decode(s, prompt);
    if (!logits) return logits.error();
    const int maxNew = std::min(o.maxTokens, c.textCtx - int(prompt.size()));
    for (int step = 0; step < maxNew; ++step) {
        std::vector<float>& l = *logits;
        if (o.applyRules) {
            if (step == 0) l[220] = l[size_t(c.eot)] = kNegInf;  // begin_suppress_tokens: " " and <|endoftext|>
            // Control tokens are never text (whisper.cpp and the checkpoints' suppress_tokens): the task,
            // language and previous-context tokens; without timestamps, the timestamps too.
            for (int id = c.sot; id < c.timestampBegin; ++id) l[size_t(id)] = kNegInf;
            if (o.timestamps)
                applyTimestampRules(c, out.tokens, l);
            else
                std::fill(l.begin() + c.timestampBegin, l.end(), kNegInf);
        }
        const int next = argmax(l);
        if (next == c.eot) break;
        out.tokens.push_back(next);
        if (step + 1 == maxNew) break;
        logits = m.decode(s, {next});
        if (!logits) return logits.error();
    }
    // Segments: text between timestamp tokens; text with no closing timestamp ends at the window's end.
    TranscriptSegment cur;
    bool open = false;
    double lastSec = 0.0;
    for (int t : out.tokens) {
        if (t >= c.timestampBegin) {
            const double sec = (t - c.timestampBegin) * 0.02;
            lastSec = sec;
            if (!open) {
                cur = {sec, sec, {}};
                open = true;
            } else {
                cur.endSec = sec;
                out.segments.push_back(cur);
                open = false;
            }
        } else if (t < c.eot) {
            if (!open && o.timestamps) cur = {lastSec, lastSec, {}}, open = true;
            cur.text += m.tokenText(t);
            out.text += m.tokenText(t);
        }
    }
    if (open && !cur.text.empty()) {
        cur.endSec = 30.0;
        out.segments.push_back(cur);
    }
    if (!o.timestamps && !out.text.empty()) out.segments.push_back({0.0, 30.0, out.text});
    return out;
}

Result<WindowTranscript> transcribeWindow(WhisperModel& m, const std::vector<float>& mel, const DecodeOptions& o) {
    const auto& c = m.config();
    if (mel.size() != size_t(c.nMels) * size_t(2 * c.audioCtx))
        return makeError("whisper: features of the wrong shape for this model");
    return decodeGreedy(m, m.encode(mel), o);
}

}  // namespace wb::whisper
