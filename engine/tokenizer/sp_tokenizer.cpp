// Tokenizer over a tokenizer.model, run by the sentencepiece library itself, so that HF checkpoints tokenize
// exactly as their reference implementation does.
#include "tokenizer/sp_tokenizer.h"

namespace wb {

#ifdef WB_NO_SENTENCEPIECE
// A WB_MINIMAL build without libsentencepiece: tokenizer.model cannot be read (GGUF vocabularies and
// tokenizer.json still work).
Result<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::load(const std::string& path) {
    return makeError(path + ": this build has no sentencepiece library (a WB_MINIMAL build); use the GGUF file or "
                            "tokenizer.json, or build with libsentencepiece-dev");
}
void SentencePieceTokenizer::encodeText(std::string_view, bool, std::vector<int32_t>&) const {}
std::string SentencePieceTokenizer::normalTokenBytes(int32_t) const { return {}; }
#else

Result<std::unique_ptr<SentencePieceTokenizer>> SentencePieceTokenizer::load(const std::string& path) {
    auto tok = std::make_unique<SentencePieceTokenizer>();
    const auto status = tok->m_processor.Load(path);
    if (!status.ok()) return makeError(path + ": sentencepiece could not load the model: " + status.ToString());
    const int n = tok->m_processor.GetPieceSize();
    tok->m_spSize = n;
    tok->m_pieces.reserve(static_cast<size_t>(n));
    tok->m_types.reserve(static_cast<size_t>(n));
    for (int id = 0; id < n; ++id) {
        tok->m_pieces.push_back(tok->m_processor.IdToPiece(id));
        TokenType type = TokenType::Normal;
        if (tok->m_processor.IsControl(id))
            type = TokenType::Control;
        else if (tok->m_processor.IsUnknown(id))
            type = TokenType::Unknown;
        else if (tok->m_processor.IsByte(id))
            type = TokenType::Byte;
        else if (tok->m_processor.IsUnused(id))
            type = TokenType::Unused;
        tok->m_types.push_back(type);
    }
    tok->m_unk = tok->m_processor.unk_id();
    tok->setBos(tok->m_processor.bos_id());
    tok->setEos(tok->m_processor.eos_id());
    // The model proto (and with it normalizer_spec.add_dummy_prefix) is not part of the installed headers;
    // whether the normalizer prepends "▁" shows in how a lone letter encodes.
    std::vector<std::string> pieces;
    if (tok->m_processor.Encode("a", &pieces).ok())
        tok->m_addSpacePrefix = !pieces.empty() && pieces[0].rfind("\xE2\x96\x81", 0) == 0;
    return tok;
}

void SentencePieceTokenizer::encodeText(std::string_view text, bool /*atStart*/, std::vector<int32_t>& out) const {
    // Every plain fragment starts the input or follows a special token, which is exactly where sentencepiece's
    // own dummy prefix goes; so encoding fragment by fragment matches the GGUF SPM path.
    std::vector<int> ids;
    if (!m_processor.Encode(text, &ids).ok()) {
        if (m_unk >= 0) out.push_back(m_unk);
        return;
    }
    out.insert(out.end(), ids.begin(), ids.end());
}

std::string SentencePieceTokenizer::normalTokenBytes(int32_t id) const {
    std::string out;
    const std::string& p = m_pieces[static_cast<size_t>(id)];
    for (size_t i = 0; i < p.size();) {
        if (p.compare(i, 3, "\xE2\x96\x81") == 0) {
            out.push_back(' ');
            i += 3;
        } else {
            out.push_back(p[i++]);
        }
    }
    return out;
}

#endif  // WB_NO_SENTENCEPIECE

}  // namespace wb
