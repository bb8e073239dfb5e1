#include "models/whisper/whisper_decode.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace wb::whisper {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr double kFinishedPenalty = -1.0e9;  // Transformers' score for a slot that must not win

bool cancelled(const DecodeOptions& o) {
    return o.cancel && o.cancel->load(std::memory_order_relaxed);
}

int argmax(const std::vector<float>& v) {
    return int(std::max_element(v.begin(), v.end()) - v.begin());
}

// log_softmax in place; all -inf stays all -inf.
void logSoftmax(std::vector<float>& v) {
    const float mx = *std::max_element(v.begin(), v.end());
    if (mx == kNegInf) return;
    double sum = 0;
    for (float x : v) sum += std::exp(double(x) - double(mx));
    const float lse = float(std::log(sum) + double(mx));
    for (float& x : v) x -= lse;
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

// The logits processors of one step, on logits or log-probabilities alike (they only mask).
void applyRules(const WhisperConfig& c, const DecodeOptions& o, const std::vector<int>& sampled,
                std::vector<float>& l) {
    if (!o.applyRules) return;
    if (sampled.empty()) l[220] = l[size_t(c.eot)] = kNegInf;  // begin_suppress_tokens: " " and <|endoftext|>
    // Control tokens are never text (whisper.cpp and the checkpoints' suppress_tokens): the task, language and
    // previous-context tokens; without timestamps, the timestamps too.
    for (int id = c.sot; id < c.timestampBegin; ++id) l[size_t(id)] = kNegInf;
    if (o.timestamps)
        applyTimestampRules(c, sampled, l);
    else
        std::fill(l.begin() + c.timestampBegin, l.end(), kNegInf);
}

// The decoder state after the prompt, shared by the attempts of the fallback.
struct Prepared {
    WhisperModel::Session session;
    std::vector<int> prompt;
    std::string language;
    std::vector<float> firstLogits;  // after the whole prompt
    double noSpeechProb = 0;
};

Result<Prepared> prepare(WhisperModel& m, const std::vector<float>& enc, const DecodeOptions& o) {
    const auto& c = m.config();
    Prepared p;
    p.session = m.startSession(enc);
    auto sotLogits = m.decode(p.session, {c.sot});
    if (!sotLogits) return sotLogits.error();
    {
        std::vector<float> lp = *sotLogits;
        logSoftmax(lp);
        p.noSpeechProb = std::exp(double(lp[size_t(c.noSpeech)]));
    }
    p.prompt = {c.sot};
    if (c.multilingual()) {
        int lang = -1;
        if (o.language.empty()) {
            lang = c.langBegin;
            for (int id = c.langBegin; id < c.langBegin + c.numLanguages; ++id)
                if ((*sotLogits)[size_t(id)] > (*sotLogits)[size_t(lang)]) lang = id;
        } else {
            const auto& langs = whisperLanguages();
            auto it = std::find(langs.begin(), langs.end(), o.language);
            if (it == langs.end() || int(it - langs.begin()) >= c.numLanguages)
                return makeError("unknown language \"" + o.language + "\"");
            lang = c.langBegin + int(it - langs.begin());
        }
        p.language = whisperLanguages()[size_t(lang - c.langBegin)];
        p.prompt.push_back(lang);
        p.prompt.push_back(c.transcribe);
    } else {
        p.language = "en";
    }
    if (!o.timestamps) p.prompt.push_back(c.noTimestamps);
    if (p.prompt.size() > 1) {
        auto l = m.decode(p.session, std::vector<int>(p.prompt.begin() + 1, p.prompt.end()));
        if (!l) return l.error();
        p.firstLogits = std::move(*l);
    } else {
        p.firstLogits = std::move(*sotLogits);
    }
    return p;
}

struct Decoded {
    std::vector<int> tokens;  // <|endoftext|> excluded
    bool eot = false;
    double avgLogprob = 0;
};

int maxNewTokens(const WhisperConfig& c, const DecodeOptions& o, const Prepared& p) {
    return std::max(0, std::min(o.maxTokens, c.textCtx - int(p.prompt.size())));
}

// Greedy (temperature 0) or one sample (temperature > 0).
Result<Decoded> decodeSingle(WhisperModel& m, const Prepared& p, const DecodeOptions& o) {
    const auto& c = m.config();
    WhisperModel::Session s;
    m.copySession(s, p.session);
    std::vector<float> l = p.firstLogits;
    std::mt19937_64 rng(o.seed);
    std::vector<double> probs;
    Decoded out;
    double sumLogprob = 0;
    int counted = 0;
    const int maxNew = maxNewTokens(c, o, p);
    for (int step = 0; step < maxNew; ++step) {
        if (cancelled(o)) return makeError("cancelled");
        applyRules(c, o, out.tokens, l);
        int next = argmax(l);
        if (l[size_t(next)] == kNegInf) next = c.eot;  // nothing allowed: the end
        if (o.temperature > 0 && l[size_t(next)] != kNegInf) {
            const double mx = double(l[size_t(next)]);
            probs.assign(l.size(), 0.0);
            double sum = 0;
            for (size_t i = 0; i < l.size(); ++i) {
                probs[i] = l[i] == kNegInf ? 0.0 : std::exp((double(l[i]) - mx) / double(o.temperature));
                sum += probs[i];
            }
            double u = std::uniform_real_distribution<double>(0.0, sum)(rng);
            for (size_t i = 0; i < probs.size(); ++i) {
                if (probs[i] <= 0) continue;
                next = int(i);
                u -= probs[i];
                if (u < 0) break;
            }
        }
        std::vector<float> lp = l;
        logSoftmax(lp);
        if (lp[size_t(next)] != kNegInf) sumLogprob += double(lp[size_t(next)]);
        ++counted;
        if (next == c.eot) {
            out.eot = true;
            break;
        }
        out.tokens.push_back(next);
        if (step + 1 == maxNew) break;
        auto r = m.decode(s, {next});
        if (!r) return r.error();
        l = std::move(*r);
    }
    out.avgLogprob = counted ? sumLogprob / counted : 0.0;
    return out;
}

// Transformers' beam search (generation/utils.py _beam_search with length_penalty 1, early_stopping False).
Result<Decoded> decodeBeams(WhisperModel& m, const Prepared& p, const DecodeOptions& o) {
    const auto& c = m.config();
    const int B = o.beamSize, V = c.vocab, K = 2 * B;
    const int maxNew = maxNewTokens(c, o, p);
    std::vector<WhisperModel::Session> cur(static_cast<size_t>(B)), nxt(static_cast<size_t>(B));
    std::vector<std::vector<int>> curTok(static_cast<size_t>(B)), nxtTok(static_cast<size_t>(B));
    std::vector<double> curScore(static_cast<size_t>(B), kFinishedPenalty), nxtScore(static_cast<size_t>(B));
    curScore[0] = 0;  // the other beams start as copies that can never win
    std::vector<std::vector<float>> logits(static_cast<size_t>(B), p.firstLogits);
    for (auto& s : cur) m.copySession(s, p.session);
    struct Hypothesis {
        double score;
        std::vector<int> tokens;
        bool eot;
    };
    std::vector<Hypothesis> done;  // at most B, best first
    std::vector<float> acc(size_t(B) * size_t(V));
    std::vector<int> order(acc.size());
    bool improvable = true;
    for (int step = 0; step < maxNew; ++step) {
        if (cancelled(o)) return makeError("cancelled");
        for (int b = 0; b < B; ++b) {
            auto& l = logits[size_t(b)];
            logSoftmax(l);
            applyRules(c, o, curTok[size_t(b)], l);
            for (int v = 0; v < V; ++v)
                acc[size_t(b) * size_t(V) + size_t(v)] = float(curScore[size_t(b)] + double(l[size_t(v)]));
        }
        std::iota(order.begin(), order.end(), 0);
        auto better = [&](int a, int b) { return acc[size_t(a)] > acc[size_t(b)] || (acc[size_t(a)] == acc[size_t(b)] && a < b); };
        std::partial_sort(order.begin(), order.begin() + K, order.end(), better);
        const bool lastStep = step + 1 >= maxNew;
        struct Cand {
            int parent, token;
            double score;
            bool hit;
        };
        std::vector<Cand> cands;
        for (int k = 0; k < K; ++k) {
            const int idx = order[size_t(k)];
            const int token = idx % V;
            cands.push_back({idx / V, token, double(acc[size_t(idx)]), token == c.eot || lastStep});
        }
        // Finished hypotheses: the hits among the best B candidates, scored by their mean log-probability.
        if (improvable) {
            for (int k = 0; k < B; ++k) {
                const auto& cd = cands[size_t(k)];
                if (!cd.hit || cd.score == -INFINITY) continue;
                Hypothesis h{cd.score / double(step + 1), curTok[size_t(cd.parent)], cd.token == c.eot};
                if (!h.eot) h.tokens.push_back(cd.token);
                done.push_back(std::move(h));
            }
            std::stable_sort(done.begin(), done.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
            if (int(done.size()) > B) done.resize(static_cast<size_t>(B));
        }
        if (std::all_of(cands.begin(), cands.end(), [](const Cand& cd) { return cd.hit; })) break;
        // The running beams: the best B candidates that did not finish (finished ones last, as Transformers).
        std::vector<int> pick(static_cast<size_t>(K));
        std::iota(pick.begin(), pick.end(), 0);
        std::stable_partition(pick.begin(), pick.end(), [&](int k) { return !cands[size_t(k)].hit; });
        for (int j = 0; j < B; ++j) {
            const auto& cd = cands[size_t(pick[size_t(j)])];
            m.copySession(nxt[size_t(j)], cur[size_t(cd.parent)]);
            nxtTok[size_t(j)] = curTok[size_t(cd.parent)];
            nxtTok[size_t(j)].push_back(cd.token);
            nxtScore[size_t(j)] = cd.score + (cd.hit ? kFinishedPenalty : 0.0);
        }
        std::swap(cur, nxt);
        std::swap(curTok, nxtTok);
        std::swap(curScore, nxtScore);
        // Early stop: the best running beam, at its current length, cannot beat the worst finished one.
        const double bestPossible = curScore[0] / double(step + 1);
        if (int(done.size()) >= B && !(bestPossible > done.back().score)) improvable = false;
        if (!improvable) break;
        // All beams' next token in one batched step (the weights read once for the B rows).
        std::vector<WhisperModel::Session*> rows;
        std::vector<int> last;
        for (int b = 0; b < B; ++b) {
            rows.push_back(&cur[size_t(b)]);
            last.push_back(curTok[size_t(b)].back());
        }
        auto r = m.decodeStep(rows, last);
        if (!r) return r.error();
        logits = std::move(*r);
    }
    Decoded out;
    if (done.empty()) return out;  // no tokens allowed at all
    out.tokens = std::move(done[0].tokens);
    out.eot = done[0].eot;
    out.avgLogprob = done[0].score;
    return out;
}

void buildText(WhisperModel& m, const DecodeOptions& o, WindowTranscript& out) {
    const auto& c = m.config();
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
}

Result<WindowTranscript> attempt(WhisperModel& m, const Prepared& p, const DecodeOptions& o) {
    if (o.beamSize < 1) return makeError("whisper: the beam size must be at least 1");
    if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) return makeError("whisper: a negative temperature");
    auto d = (o.beamSize > 1 && o.temperature == 0) ? decodeBeams(m, p, o) : decodeSingle(m, p, o);
    if (!d) return d.error();
    WindowTranscript out;
    out.language = p.language;
    out.prompt = p.prompt;
    out.tokens = std::move(d->tokens);
    out.endedWithEot = d->eot;
    out.avgLogprob = d->avgLogprob;
    out.noSpeechProb = p.noSpeechProb;
    out.temperature = o.temperature;
    std::vector<int> withEot = out.tokens;
    if (out.endedWithEot) withEot.push_back(m.config().eot);
    out.compressionRatio = tokenCompressionRatio(withEot, m.config().vocab);
    buildText(m, o, out);
    return out;
}

}  // namespace

double tokenCompressionRatio(const std::vector<int>& tokens, int vocab) {
    if (tokens.empty()) return 0.0;
    const int width = int(std::log2(double(std::max(vocab, 2))) / 8.0) + 1;
    std::vector<unsigned char> raw;
    raw.reserve(tokens.size() * size_t(width));
    for (int t : tokens)
        for (int b = 0; b < width; ++b) raw.push_back((unsigned char)((unsigned(t) >> (8 * b)) & 0xffu));
    uLongf packedSize = compressBound(uLong(raw.size()));
    std::vector<unsigned char> packed(packedSize);
    if (compress2(packed.data(), &packedSize, raw.data(), uLong(raw.size()), Z_DEFAULT_COMPRESSION) != Z_OK)
        return 0.0;
    return double(raw.size()) / double(packedSize);
}

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

Result<WindowTranscript> decodeOnce(WhisperModel& m, const std::vector<float>& enc, const DecodeOptions& o) {
    auto p = prepare(m, enc, o);
    if (!p) return p.error();
    return attempt(m, *p, o);
}

Result<WindowTranscript> decodeGreedy(WhisperModel& m, const std::vector<float>& enc, const DecodeOptions& o) {
    DecodeOptions g = o;
    g.beamSize = 1;
    g.temperature = 0;
    return decodeOnce(m, enc, g);
}

Result<WindowTranscript> decodeWithFallback(WhisperModel& m, const std::vector<float>& enc, const DecodeOptions& o,
                                            const FallbackOptions& f) {
    if (f.temperatures.empty()) return makeError("whisper: no temperature to decode at");
    auto p = prepare(m, enc, o);
    if (!p) return p.error();
    WindowTranscript last;
    for (size_t i = 0; i < f.temperatures.size(); ++i) {
        DecodeOptions a = o;
        a.temperature = f.temperatures[i];
        a.seed = o.seed + i;  // each attempt its own stream, all from the caller's seed
        auto r = attempt(m, *p, a);
        if (!r) return r.error();
        last = std::move(*r);
        last.attempts = int(i) + 1;
        bool fallback = false;
        if (f.compressionRatioThreshold > 0 && last.compressionRatio > f.compressionRatioThreshold) fallback = true;
        const bool lowLogprob = last.avgLogprob < f.logprobThreshold;
        if (lowLogprob) fallback = true;
        if (f.noSpeechThreshold > 0 && lowLogprob && last.noSpeechProb > f.noSpeechThreshold) {
            last.noSpeech = true;  // silence: no need for another temperature
            last.text.clear();
            last.segments.clear();
            return last;
        }
        if (!fallback) break;
    }
    return last;
}

Result<WindowTranscript> transcribeWindow(WhisperModel& m, const std::vector<float>& mel, const DecodeOptions& o,
                                          const FallbackOptions& fallback) {
    const auto& c = m.config();
    if (mel.size() != size_t(c.nMels) * size_t(2 * c.audioCtx))
        return makeError("whisper: features of the wrong shape for this model");
    return decodeWithFallback(m, m.encode(mel), o, fallback);
}

}  // namespace wb::whisper
