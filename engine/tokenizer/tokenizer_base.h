// Private to the tokenizer: what the SPM, byte-level BPE and sentencepiece-library tokenizers share — the
// piece table with token types, special-token partitioning, BOS handling and decoding.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/tokenizer.h"

namespace wb {

/// GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : uint8_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6
};

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
/// Heterogeneous lookup, so that hot loops can probe with string_views without allocating.
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

/// Finds special / added tokens in text. Leftmost match wins, and among the tokens starting there the longest,
/// so "<|im_start|>" is never cut into "<|im" + ... by a shorter added token.
class SpecialMatcher {
public:
    struct Fragment {
        std::string_view text;  // raw text when id < 0
        int32_t id = -1;
    };

    /// alwaysMatch: non-special added tokens (USER_DEFINED) are matched even for SpecialTokens::Plain, as
    /// both llama.cpp and HF tokenizers do; control tokens only with SpecialTokens::Parse.
    void add(std::string text, int32_t id, bool alwaysMatch, bool lstrip = false, bool rstrip = false);
    std::vector<Fragment> split(std::string_view text, SpecialTokens mode) const;
    std::optional<int32_t> find(std::string_view text) const;
    bool empty() const { return m_entries.empty(); }

private:
    struct Entry {
        std::string text;
        int32_t id;
        bool alwaysMatch;
        bool lstrip;
        bool rstrip;
    };
    std::vector<Entry> m_entries;
    std::array<std::vector<uint32_t>, 256> m_byFirstByte;  // indices into m_entries, longest first
    TokenMap m_byText;
};

class TokenizerBase : public Tokenizer {
public:
    int32_t vocabSize() const override { return static_cast<int32_t>(m_pieces.size()); }
    std::vector<int32_t> encode(std::string_view text, bool addBos, SpecialTokens special) const override;
    std::vector<int32_t> encodeSegments(const std::vector<Segment>& segments, bool addBos) const override;
    std::string tokenBytes(int32_t id, bool includeSpecial = false) const override;
    std::string piece(int32_t id) const override;
    bool isControl(int32_t id) const override;
    std::string decode(const std::vector<int32_t>& ids, bool includeSpecial = false) const override;
    std::optional<int32_t> specialTokenId(std::string_view text) const override;

    TokenType tokenType(int32_t id) const {
        return id >= 0 && id < vocabSize() ? m_types[static_cast<size_t>(id)] : TokenType::Undefined;
    }

    /// Registers control / user-defined / unknown tokens with the matcher and collects the stop tokens.
    /// Call once the pieces, types, bos and eos are set.
    void finishSetup();

    // Set by the loaders.
    std::vector<std::string> m_pieces;
    std::vector<TokenType> m_types;
    int32_t m_unk = -1;
    int32_t m_eot = -1;
    bool m_addSpacePrefix = false;  // SPM: a "▁" goes before the text (and after each special token)
    SpecialMatcher m_special;
    std::unordered_map<int32_t, std::pair<bool, bool>> m_stripFlags;  // id -> (lstrip, rstrip), HF added tokens

    void setBos(int32_t id) { m_bos = id; }
    void setEos(int32_t id) { m_eos = id; }
    void setAddBos(bool v) { m_addBos = v; }
    void setChatTemplate(std::string t) { m_chatTemplate = std::move(t); }
    void addStopToken(int32_t id);

protected:
    /// Tokenizes one stretch of plain text (no special tokens in it). atStart: it begins the input or follows
    /// a special token, which is where SPM puts its space prefix.
    virtual void encodeText(std::string_view text, bool atStart, std::vector<int32_t>& out) const = 0;
    /// Bytes of a NORMAL (or unused) token: ▁ → space for SPM, byte-unicode unmapped for BPE.
    virtual std::string normalTokenBytes(int32_t id) const = 0;
};

/// "<0x0A>" → 0x0A; -1 if the text is not a byte piece.
int parseBytePiece(std::string_view text);

}  // namespace wb
