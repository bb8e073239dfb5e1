#include "tokenizer/pretokenizer.h"

#include "tokenizer/unicode_tables.h"

namespace wb {

namespace {

using unicode::kLetter;
using unicode::kNumber;
using unicode::kWhitespace;

struct Cpts {
    std::vector<uint32_t> cpt;
    std::vector<uint8_t> flags;
    std::vector<size_t> offset;  // byte offset of each code point, plus one past the end
};

Cpts decode(std::string_view text) {
    Cpts c;
    c.cpt.reserve(text.size());
    c.flags.reserve(text.size());
    c.offset.reserve(text.size() + 1);
    for (size_t pos = 0; pos < text.size();) {
        const size_t len = unicode::utf8Len(text, pos);
        const uint32_t cpt = unicode::utf8Decode(text, pos, len);
        c.cpt.push_back(cpt);
        c.flags.push_back(unicode::cptFlags(cpt));
        c.offset.push_back(pos);
        pos += len;
    }
    c.offset.push_back(text.size());
    return c;
}

uint32_t asciiLower(uint32_t c) {
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

}  // namespace

std::vector<std::string_view> preTokenize(std::string_view text, PreTokenizer kind) {
    const Cpts c = decode(text);
    const size_t n = c.cpt.size();
    std::vector<std::string_view> words;
    words.reserve(n / 3 + 1);

    // Positions past the end read as "no class"; the regexes' lookaheads rely on that.
    const auto flagsAt = [&](size_t p) -> uint8_t { return p < n ? c.flags[p] : 0; };
    const auto cptAt = [&](size_t p) -> uint32_t { return p < n ? c.cpt[p] : 0xFFFFFFFFu; };
    const auto isCrLf = [&](size_t p) { return p < n && (c.cpt[p] == '\r' || c.cpt[p] == '\n'); };

    size_t prevEnd = 0;
    size_t pos = 0;
    const auto emit = [&](size_t end) {
        if (end > prevEnd) words.push_back(text.substr(c.offset[prevEnd], c.offset[end] - c.offset[prevEnd]));
        prevEnd = end;
        pos = end;
    };
    const bool llamaStyle = kind != PreTokenizer::Gpt2;
    const size_t maxDigits = kind == PreTokenizer::Llama3 ? 3 : kind == PreTokenizer::Qwen2 ? 1 : SIZE_MAX;

    while (pos < n) {
        const uint32_t cpt = c.cpt[pos];
        const uint8_t flags = c.flags[pos];

        // 's|'t|'re|'ve|'m|'ll|'d  (case-insensitive for the Llama 3 / Qwen2 patterns)
        if (cpt == '\'' && pos + 1 < n) {
            const uint32_t a = llamaStyle ? asciiLower(cptAt(pos + 1)) : cptAt(pos + 1);
            if (a == 's' || a == 't' || a == 'm' || a == 'd') {
                emit(pos + 2);
                continue;
            }
            if (pos + 2 < n) {
                const uint32_t b = llamaStyle ? asciiLower(cptAt(pos + 2)) : cptAt(pos + 2);
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
                    emit(pos + 3);
                    continue;
                }
            }
        }

        if (llamaStyle) {
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if (!(cpt == '\r' || cpt == '\n' || (flags & kNumber)) &&
                ((flags & kLetter) || (flagsAt(pos + 1) & kLetter))) {
                ++pos;
                while (flagsAt(pos) & kLetter) ++pos;
                emit(pos);
                continue;
            }
            // \p{N}{1,3} (Llama 3) or \p{N} (Qwen2)
            if (flags & kNumber) {
                size_t end = pos;
                while ((flagsAt(end) & kNumber) && end - pos < maxDigits) ++end;
                emit(end);
                continue;
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            const size_t p0 = pos + (cpt == ' ' ? 1 : 0);
            if (p0 >= n || !(flagsAt(p0) & (kWhitespace | kLetter | kNumber))) {
                size_t end = p0;
                while (end < n && !(c.flags[end] & (kWhitespace | kLetter | kNumber))) ++end;
                while (isCrLf(end)) ++end;
                emit(end);
                continue;
            }
        } else {
            const size_t p0 = pos + (cpt == ' ' ? 1 : 0);
            const uint8_t f0 = flagsAt(p0);
            //  ?\p{L}+ and  ?\p{N}+
            if (f0 & (kLetter | kNumber)) {
                const uint8_t cls = (f0 & kLetter) ? kLetter : kNumber;
                size_t end = p0;
                while (flagsAt(end) & cls) ++end;
                emit(end);
                continue;
            }
            //  ?[^\s\p{L}\p{N}]+
            if (p0 < n && !(f0 & kWhitespace)) {
                size_t end = p0;
                while (end < n && !(c.flags[end] & (kWhitespace | kLetter | kNumber))) ++end;
                emit(end);
                continue;
            }
        }

        size_t numSpaces = 0;
        size_t lastCrLfEnd = 0;
        while (flagsAt(pos + numSpaces) & kWhitespace) {
            if (llamaStyle && isCrLf(pos + numSpaces)) lastCrLfEnd = pos + numSpaces + 1;
            ++numSpaces;
        }
        // \s*[\r\n]+
        if (lastCrLfEnd > 0) {
            emit(lastCrLfEnd);
            continue;
        }
        // \s+(?!\S): leave the last space to prefix the word that follows
        if (numSpaces > 1 && pos + numSpaces < n) {
            emit(pos + numSpaces - 1);
            continue;
        }
        // \s+
        if (numSpaces > 0) {
            emit(pos + numSpaces);
            continue;
        }
        emit(pos + 1);
    }
    return words;
}

}  // namespace wb
