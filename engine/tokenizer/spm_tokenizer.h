// Private to the tokenizer: SentencePiece BPE over a GGUF "llama" vocabulary, and byte-level BPE over a GGUF
// "gpt2" vocabulary or an HF tokenizer.json.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_base.h"

namespace wb {

/// SentencePiece-style BPE as llama.cpp's llm_tokenizer_spm does it: start from single UTF-8 characters and
/// repeatedly merge the adjacent pair whose concatenation is the highest-scoring vocabulary piece; characters
/// left without a piece fall back to <0xXX> byte tokens.
class SpmTokenizer final : public TokenizerBase {
public:
    std::string kind() const override { return "spm"; }
    /// Builds the lookup tables; call after m_pieces, m_types and m_scores are set.
    void buildIndex();

    std::vector<float> m_scores;

protected:
    void encodeText(std::string_view text, bool atStart, std::vector<int32_t>& out) const override;
    std::string normalTokenBytes(int32_t id) const override;

private:
    TokenMap m_mergeable;  // pieces the merge loop may produce (normal and user-defined)
    std::array<int32_t, 256> m_byteToken{};
};

/// Byte-level BPE: text is split by the pre-tokenizer, each word's bytes are mapped to printable code points
/// (GPT-2's bytes_to_unicode), and merges are applied lowest rank first.
class BpeTokenizer final : public TokenizerBase {
public:
    std::string kind() const override { return "bpe"; }
    /// merges: (left, right) pairs in rank order. A merge naming a non-piece can never apply and is skipped.
    Result<void> buildIndex(const std::vector<std::pair<std::string, std::string>>& merges);

    PreTokenizer m_preTokenizer = PreTokenizer::Gpt2;
    /// A word that is a piece as a whole is emitted without merging (Llama 3's tokenizer.json says so).
    bool m_ignoreMerges = false;

protected:
    void encodeText(std::string_view text, bool atStart, std::vector<int32_t>& out) const override;
    std::string normalTokenBytes(int32_t id) const override;

private:
    void encodeWord(std::string_view word, std::vector<int32_t>& out) const;

    struct Merge {
        int32_t rank;
        int32_t result;
    };
    TokenMap m_tokenIds;
    std::unordered_map<uint64_t, Merge> m_merges;  // (left id << 32 | right id) -> rank and merged id
    std::array<std::string, 256> m_byteToUnicode;  // byte -> its printable stand-in, UTF-8
    std::unordered_map<uint32_t, uint8_t> m_unicodeToByte;
};

/// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others map to U+0100 onwards.
std::array<uint32_t, 256> gpt2ByteToCodepoint();

}  // namespace wb
