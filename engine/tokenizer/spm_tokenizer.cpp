#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "tokenizer/unicode_tables.h"

namespace wb {

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // ▁ U+2581, SentencePiece's visible space

struct Symbol {
    int32_t prev;
    int32_t next;
    uint32_t offset;
    uint32_t len;  // 0 once merged into its left neighbour
};

struct SpmBigram {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size;
};

struct SpmBigramLess {
    // Highest score first; on a tie the leftmost pair, which is what makes the result deterministic.
    bool operator()(const SpmBigram& a, const SpmBigram& b) const {
        return a.score < b.score || (a.score == b.score && a.left > b.left);
    }
};

}  // namespace

void SpmTokenizer::buildIndex() {
    m_byteToken.fill(-1);
    m_mergeable.reserve(m_pieces.size());
    for (size_t i = 0; i < m_pieces.size(); ++i) {
        const auto id = static_cast<int32_t>(i);
        switch (m_types[i]) {
            case TokenType::Normal:
            case TokenType::UserDefined:
            case TokenType::Undefined:
                m_mergeable.emplace(m_pieces[i], id);
                break;
            case TokenType::Byte:
                if (const int b = parseBytePiece(m_pieces[i]); b >= 0 && m_byteToken[static_cast<size_t>(b)] < 0)
                    m_byteToken[static_cast<size_t>(b)] = id;
                break;
            default:
                // Control, unknown and unused pieces are never produced by merging; control text such as "<s>"
                // in user input must come out as ordinary pieces.
                break;
        }
    }
}

void SpmTokenizer::encodeText(std::string_view text, bool atStart, std::vector<int32_t>& out) const {
    std::string s;
    s.reserve(text.size() + 16);
    if (m_addSpacePrefix && atStart) s += kSpace;
    for (char ch : text) {
        if (ch == ' ')
            s += kSpace;
        else
            s.push_back(ch);
    }
    if (s.empty()) return;

    std::vector<Symbol> syms;
    syms.reserve(s.size());
    for (size_t pos = 0; pos < s.size();) {
        // Validated length, unlike llama.cpp's lead-byte-only split: with a stray lead byte that would swallow
        // the first byte of a following "▁" and emit it as <0xE2>, so invalid UTF-8 would not round-trip.
        const size_t len = unicode::utf8Len(s, pos);
        const auto idx = static_cast<int32_t>(syms.size());
        syms.push_back(Symbol{idx - 1, -1, static_cast<uint32_t>(pos), static_cast<uint32_t>(len)});
        if (idx > 0) syms[static_cast<size_t>(idx - 1)].next = idx;
        pos += len;
    }

    std::vector<SpmBigram> heapStore;
    heapStore.reserve(syms.size());
    std::priority_queue<SpmBigram, std::vector<SpmBigram>, SpmBigramLess> queue(SpmBigramLess{}, std::move(heapStore));
    const std::string_view sv = s;
    const auto tryAdd = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const Symbol& l = syms[static_cast<size_t>(left)];
        const Symbol& r = syms[static_cast<size_t>(right)];
        const auto it = m_mergeable.find(sv.substr(l.offset, l.len + r.len));
        if (it == m_mergeable.end()) return;
        queue.push(SpmBigram{m_scores[static_cast<size_t>(it->second)], left, right, l.len + r.len});
    };
    for (size_t i = 1; i < syms.size(); ++i) tryAdd(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

    while (!queue.empty()) {
        const SpmBigram b = queue.top();
        queue.pop();
        Symbol& l = syms[static_cast<size_t>(b.left)];
        Symbol& r = syms[static_cast<size_t>(b.right)];
        // Stale entry: one side has been merged away or grown since the pair was queued.
        if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = b.left;
        tryAdd(l.prev, b.left);
        tryAdd(b.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
        const Symbol& sym = syms[static_cast<size_t>(i)];
        const std::string_view piece = sv.substr(sym.offset, sym.len);
        if (const auto it = m_mergeable.find(piece); it != m_mergeable.end()) {
            out.push_back(it->second);
            continue;
        }
        for (char ch : piece) {
            const int32_t byteId = m_byteToken[static_cast<uint8_t>(ch)];
            if (byteId >= 0)
                out.push_back(byteId);
            else if (m_unk >= 0)
                out.push_back(m_unk);
        }
    }
}

std::string SpmTokenizer::normalTokenBytes(int32_t id) const {
    const std::string& p = m_pieces[static_cast<size_t>(id)];
    std::string out;
    out.reserve(p.size());
    for (size_t i = 0; i < p.size();) {
        if (p.compare(i, kSpace.size(), kSpace) == 0) {
            out.push_back(' ');
            i += kSpace.size();
        } else {
            out.push_back(p[i++]);
        }
    }
    return out;
}

std::array<uint32_t, 256> gpt2ByteToCodepoint() {
    std::array<uint32_t, 256> map{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        map[b] = printable ? b : next++;
    }
    return map;
}

Result<void> BpeTokenizer::buildIndex(const std::vector<std::pair<std::string, std::string>>& merges) {
    const auto byteMap = gpt2ByteToCodepoint();
    for (uint32_t b = 0; b < 256; ++b) {
        m_byteToUnicode[b].clear();
        unicode::appendUtf8(m_byteToUnicode[b], byteMap[b]);
        m_unicodeToByte[byteMap[b]] = static_cast<uint8_t>(b);
    }
    m_tokenIds.reserve(m_pieces.size());
    for (size_t i = 0; i < m_pieces.size(); ++i) m_tokenIds.emplace(m_pieces[i], static_cast<int32_t>(i));

    m_merges.reserve(merges.size());
    std::string joined;
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const auto& [left, right] = merges[rank];
        const auto l = m_tokenIds.find(left);
        const auto r = m_tokenIds.find(right);
        if (l == m_tokenIds.end() || r == m_tokenIds.end()) continue;
        joined = left;
        joined += right;
        const auto res = m_tokenIds.find(joined);
        const uint64_t key =
            (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) | static_cast<uint32_t>(r->second);
        m_merges.emplace(key, Merge{static_cast<int32_t>(rank), res == m_tokenIds.end() ? -1 : res->second});
    }
    return {};
}

void BpeTokenizer::encodeText(std::string_view text, bool /*atStart*/, std::vector<int32_t>& out) const {
    std::string mapped;
    for (std::string_view word : preTokenize(text, m_preTokenizer)) {
        mapped.clear();
        for (char ch : word) mapped += m_byteToUnicode[static_cast<uint8_t>(ch)];
        encodeWord(mapped, out);
    }
}

namespace {

struct BpeSymbol {
    int32_t prev;
    int32_t next;
    int32_t id;  // -1: not a piece (never merges)
    uint32_t offset;
    uint32_t len;
};

struct BpeBigram {
    int32_t rank;
    int32_t left;
    int32_t right;
    uint32_t size;
};

struct BpeBigramGreater {
    // Lowest rank first; on a tie the leftmost pair.
    bool operator()(const BpeBigram& a, const BpeBigram& b) const {
        return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
    }
};

}  // namespace

void BpeTokenizer::encodeWord(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (m_ignoreMerges) {
        if (const auto it = m_tokenIds.find(word); it != m_tokenIds.end()) {
            out.push_back(it->second);
            return;
        }
    }
    std::vector<BpeSymbol> syms;
    syms.reserve(word.size());
    for (size_t pos = 0; pos < word.size();) {
        const size_t len = unicode::utf8Len(word, pos);
        const auto it = m_tokenIds.find(word.substr(pos, len));
        const auto idx = static_cast<int32_t>(syms.size());
        syms.push_back(BpeSymbol{idx - 1, -1, it == m_tokenIds.end() ? -1 : it->second, static_cast<uint32_t>(pos),
                                 static_cast<uint32_t>(len)});
        if (idx > 0) syms[static_cast<size_t>(idx - 1)].next = idx;
        pos += len;
    }

    std::priority_queue<BpeBigram, std::vector<BpeBigram>, BpeBigramGreater> queue;
    const auto tryAdd = [&](int32_t left, int32_t right) {
        if (left < 0 || right < 0) return;
        const BpeSymbol& l = syms[static_cast<size_t>(left)];
        const BpeSymbol& r = syms[static_cast<size_t>(right)];
        if (l.id < 0 || r.id < 0) return;
        const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l.id)) << 32) | static_cast<uint32_t>(r.id);
        const auto it = m_merges.find(key);
        if (it == m_merges.end()) return;
        queue.push(BpeBigram{it->second.rank, left, right, l.len + r.len});
    };
    for (size_t i = 1; i < syms.size(); ++i) tryAdd(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

    while (!queue.empty()) {
        const BpeBigram b = queue.top();
        queue.pop();
        BpeSymbol& l = syms[static_cast<size_t>(b.left)];
        BpeSymbol& r = syms[static_cast<size_t>(b.right)];
        if (l.len == 0 || r.len == 0 || l.len + r.len != b.size || l.next != b.right) continue;
        const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l.id)) << 32) | static_cast<uint32_t>(r.id);
        l.id = m_merges.at(key).result;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = b.left;
        tryAdd(l.prev, b.left);
        tryAdd(b.left, l.next);
    }

    for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
        const BpeSymbol& sym = syms[static_cast<size_t>(i)];
        if (sym.id >= 0) {
            out.push_back(sym.id);
            continue;
        }
        // Not a piece (a merge whose result is missing, or a character outside the vocabulary): emit what
        // can be found character by character.
        const std::string_view text = word.substr(sym.offset, sym.len);
        for (size_t pos = 0; pos < text.size();) {
            const size_t len = unicode::utf8Len(text, pos);
            if (const auto it = m_tokenIds.find(text.substr(pos, len)); it != m_tokenIds.end())
                out.push_back(it->second);
            else if (m_unk >= 0)
                out.push_back(m_unk);
            pos += len;
        }
    }
}

std::string BpeTokenizer::normalTokenBytes(int32_t id) const {
    const std::string& p = m_pieces[static_cast<size_t>(id)];
    std::string out;
    out.reserve(p.size());
    for (size_t pos = 0; pos < p.size();) {
        const size_t len = unicode::utf8Len(p, pos);
        const uint32_t cpt = unicode::utf8Decode(p, pos, len);
        if (const auto it = m_unicodeToByte.find(cpt); it != m_unicodeToByte.end())
            out.push_back(static_cast<char>(it->second));
        else
            out.append(p, pos, len);  // not a byte stand-in (an added token's plain text): keep as is
        pos += len;
    }
    return out;
}

}  // namespace wb
