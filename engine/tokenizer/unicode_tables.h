// Private to the tokenizer: code point classes for the hand-written pre-tokenizers, and UTF-8 stepping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wb::unicode {

enum CptFlags : uint8_t { kLetter = 1, kNumber = 2, kWhitespace = 4 };

struct UnicodeRange {
    uint32_t first;
    uint32_t last;
    uint8_t flags;
};

extern const UnicodeRange kUnicodeRanges[];
extern const size_t kUnicodeRangeCount;

/// Letter / number / whitespace bits of a code point (0 for everything else, including unassigned).
uint8_t cptFlags(uint32_t cpt);

/// Byte length of the UTF-8 sequence starting at s[pos], clamped to the string; 1 for an invalid lead or
/// truncated sequence, so that malformed input still advances one byte at a time.
size_t utf8Len(std::string_view s, size_t pos);

/// Decodes the character at s[pos] (whose length utf8Len gives); invalid sequences decode as U+FFFD.
uint32_t utf8Decode(std::string_view s, size_t pos, size_t len);

void appendUtf8(std::string& out, uint32_t cpt);

}  // namespace wb::unicode
