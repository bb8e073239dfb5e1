// Private to the tokenizer: tokenizer.model through the sentencepiece library.
#pragma once

#ifndef WB_NO_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

#include <memory>
#include <string>

#include "tokenizer/tokenizer_base.h"

namespace wb {

class SentencePieceTokenizer final : public TokenizerBase {
public:
    static Result<std::unique_ptr<SentencePieceTokenizer>> load(const std::string& path);
    std::string kind() const override { return "spm"; }
    /// Pieces of the model itself; ids at or past it are added tokens from tokenizer_config.json.
    int32_t modelPieceCount() const { return m_spSize; }

protected:
    void encodeText(std::string_view text, bool atStart, std::vector<int32_t>& out) const override;
    std::string normalTokenBytes(int32_t id) const override;

private:
#ifndef WB_NO_SENTENCEPIECE
    sentencepiece::SentencePieceProcessor m_processor;
#endif
    int32_t m_spSize = 0;
};

}  // namespace wb
