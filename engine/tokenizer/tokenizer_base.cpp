#include "tokenizer/tokenizer_base.h"

#include <algorithm>
#include <cstdio>

namespace wb {

namespace {

bool isAsciiSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

int parseBytePiece(std::string_view text) {
    if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
    int value = 0;
    for (size_t i = 3; i < 5; ++i) {
        const char c = text[i];
        int digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else
            return -1;
        value = value * 16 + digit;
    }
    return value;
}

void SpecialMatcher::add(std::string text, int32_t id, bool alwaysMatch, bool lstrip, bool rstrip) {
    if (text.empty()) return;
    // A text registered twice keeps its first id, like a vocab lookup would.
    if (!m_byText.emplace(text, id).second) return;
    const auto first = static_cast<uint8_t>(text[0]);
    m_entries.push_back(Entry{std::move(text), id, alwaysMatch, lstrip, rstrip});
    auto& bucket = m_byFirstByte[first];
    bucket.push_back(static_cast<uint32_t>(m_entries.size() - 1));
    std::stable_sort(bucket.begin(), bucket.end(),
                     [this](uint32_t a, uint32_t b) { return m_entries[a].text.size() > m_entries[b].text.size(); });
}

std::optional<int32_t> SpecialMatcher::find(std::string_view text) const {
    const auto it = m_byText.find(text);
    if (it == m_byText.end()) return std::nullopt;
    return it->second;
}

std::vector<SpecialMatcher::Fragment> SpecialMatcher::split(std::string_view text, SpecialTokens mode) const {
    std::vector<Fragment> frags;
    size_t rawStart = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        const Entry* match = nullptr;
        for (uint32_t idx : m_byFirstByte[static_cast<uint8_t>(text[pos])]) {
            const Entry& e = m_entries[idx];
            if (mode == SpecialTokens::Plain && !e.alwaysMatch) continue;
            if (text.compare(pos, e.text.size(), e.text) == 0) {
                match = &e;
                break;
            }
        }
        if (!match) {
            ++pos;
            continue;
        }
        std::string_view raw = text.substr(rawStart, pos - rawStart);
        if (match->lstrip)
            while (!raw.empty() && isAsciiSpace(raw.back())) raw.remove_suffix(1);
        if (!raw.empty()) frags.push_back(Fragment{raw, -1});
        frags.push_back(Fragment{{}, match->id});
        pos += match->text.size();
        if (match->rstrip)
            while (pos < text.size() && isAsciiSpace(text[pos])) ++pos;
        rawStart = pos;
    }
    if (rawStart < text.size()) frags.push_back(Fragment{text.substr(rawStart), -1});
    return frags;
}

void TokenizerBase::addStopToken(int32_t id) {
    if (id < 0 || std::find(m_stopTokens.begin(), m_stopTokens.end(), id) != m_stopTokens.end()) return;
    m_stopTokens.push_back(id);
}

void TokenizerBase::finishSetup() {
    // Chat models end a turn with a token of their own rather than eos; treat the well-known ones as stops too.
    static const std::string_view kEndOfTurn[] = {"<|eot_id|>",    "<|im_end|>",      "<|end|>",
                                                  "<end_of_turn>", "<|endoftext|>",   "<|eom_id|>",
                                                  "<EOT>",         "<|end_of_text|>", "<｜end▁of▁sentence｜>"};
    addStopToken(m_eos);
    addStopToken(m_eot);
    for (size_t i = 0; i < m_pieces.size(); ++i) {
        const auto id = static_cast<int32_t>(i);
        const TokenType type = m_types[i];
        if (type != TokenType::Control && type != TokenType::UserDefined && type != TokenType::Unknown) continue;
        bool lstrip = false, rstrip = false;
        if (auto it = m_stripFlags.find(id); it != m_stripFlags.end()) std::tie(lstrip, rstrip) = it->second;
        m_special.add(m_pieces[i], id, type == TokenType::UserDefined, lstrip, rstrip);
        if (type == TokenType::Control &&
            std::find(std::begin(kEndOfTurn), std::end(kEndOfTurn), m_pieces[i]) != std::end(kEndOfTurn))
            addStopToken(id);
    }
}

std::vector<int32_t> TokenizerBase::encode(std::string_view text, bool addBos, SpecialTokens special) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (addBos && m_addBos && m_bos >= 0) out.push_back(m_bos);
    bool atStart = true;
    for (const auto& frag : m_special.split(text, special)) {
        if (frag.id >= 0) {
            out.push_back(frag.id);
            atStart = true;
        } else {
            encodeText(frag.text, atStart, out);
            atStart = false;
        }
    }
    return out;
}

std::vector<int32_t> TokenizerBase::encodeSegments(const std::vector<Segment>& segments, bool addBos) const {
    std::vector<int32_t> out;
    if (addBos && m_addBos && m_bos >= 0) out.push_back(m_bos);
    bool atStart = true;
    std::string pending;  // plain text not yet encoded, possibly from several segments
    auto flush = [&] {
        if (pending.empty()) return;
        encodeText(pending, atStart, out);
        atStart = false;
        pending.clear();
    };
    for (const Segment& seg : segments)
        for (const auto& frag : m_special.split(seg.text, seg.special)) {
            if (frag.id >= 0) {
                flush();
                out.push_back(frag.id);
                atStart = true;
            } else {
                pending.append(frag.text);
            }
        }
    flush();
    return out;
}

std::string TokenizerBase::tokenBytes(int32_t id, bool includeSpecial) const {
    if (id < 0 || id >= vocabSize()) return {};
    const auto& text = m_pieces[static_cast<size_t>(id)];
    switch (m_types[static_cast<size_t>(id)]) {
        case TokenType::Control:
        case TokenType::Unknown:
            return includeSpecial ? text : std::string();
        case TokenType::UserDefined:
            return text;
        case TokenType::Byte: {
            const int b = parseBytePiece(text);
            return b >= 0 ? std::string(1, static_cast<char>(b)) : text;
        }
        default:
            return normalTokenBytes(id);
    }
}

std::string TokenizerBase::piece(int32_t id) const {
    return id >= 0 && id < vocabSize() ? m_pieces[static_cast<size_t>(id)] : std::string();
}

bool TokenizerBase::isControl(int32_t id) const {
    return tokenType(id) == TokenType::Control;
}

std::optional<int32_t> TokenizerBase::specialTokenId(std::string_view text) const {
    return m_special.find(text);
}

std::string TokenizerBase::decode(const std::vector<int32_t>& ids, bool includeSpecial) const {
    std::string out;
    // The encoder put a "▁" before the text and after every special or added token; undo exactly that space.
    bool stripSpace = m_addSpacePrefix;
    for (int32_t id : ids) {
        std::string bytes = tokenBytes(id, includeSpecial);
        const TokenType type = tokenType(id);
        if (type == TokenType::Control || type == TokenType::UserDefined) {
            out += bytes;
            stripSpace = m_addSpacePrefix;
            continue;
        }
        if (stripSpace && !bytes.empty()) {
            if (bytes[0] == ' ') bytes.erase(0, 1);
            stripSpace = false;
        }
        out += bytes;
    }
    return out;
}

}  // namespace wb
