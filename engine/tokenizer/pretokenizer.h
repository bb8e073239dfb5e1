// Private to the tokenizer: the byte-level BPE pre-tokenizers, i.e. the splitting regexes of GPT-2, Llama 3 and
// Qwen2 written out by hand over Unicode classes (no regex engine: std::regex has no \p{L}, and the hand-written
// form is what llama.cpp matches against, including its treatment of invalid UTF-8).
#pragma once

#include <string_view>
#include <vector>

namespace wb {

enum class PreTokenizer {
    /// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Gpt2,
    /// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
    /// \s+(?!\S)|\s+
    Llama3,
    /// As Llama3, with single digits (\p{N} instead of \p{N}{1,3}).
    Qwen2,
};

/// Splits text into pre-tokenizer words (views into text, together covering all of it in order).
std::vector<std::string_view> preTokenize(std::string_view text, PreTokenizer kind);

}  // namespace wb
