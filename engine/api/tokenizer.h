// Tokenizers: SentencePiece (tokenizer.model through the sentencepiece library; the SPM vocab inside GGUF),
// byte-level BPE (GGUF "gpt2" vocab and HF tokenizer.json). Special/added tokens are matched whole and never
// split when special parsing is on; with it off (user text), the same characters tokenize as plain text.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace wb {

class GgufFile;

enum class SpecialTokens { Parse, Plain };

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    /// From GGUF metadata (tokenizer.ggml.model = "llama" or "gpt2").
    static Result<std::unique_ptr<Tokenizer>> fromGguf(const GgufFile& gguf);
    /// From a Hugging Face folder: tokenizer.json if present, else tokenizer.model; tokenizer_config.json
    /// (added tokens, bos/eos, add_bos_token, chat_template) when present.
    static Result<std::unique_ptr<Tokenizer>> fromHfFolder(const std::string& dir);
    /// A model's tokenizer alone: a folder's tokenizer files, or a .gguf file's vocabulary (no weights read).
    static Result<std::unique_ptr<Tokenizer>> fromModelPath(const std::string& path);

    /// "spm" or "bpe".
    virtual std::string kind() const = 0;
    virtual int32_t vocabSize() const = 0;
    /// Text to ids. addBos prepends BOS when the model has one and its config asks for it.
    virtual std::vector<int32_t> encode(std::string_view text, bool addBos, SpecialTokens special) const = 0;
    /// Several pieces of one prompt, each with its own special-token mode (a chat template's text: Parse; the
    /// messages' text: Plain), tokenized as the one string they form: plain text that runs across a piece boundary
    /// is encoded together, so the ids equal encode(whole, Parse) whenever the Plain pieces hold no special-token
    /// text. Special tokens split the text as usual.
    struct Segment {
        std::string_view text;
        SpecialTokens special = SpecialTokens::Plain;
    };
    virtual std::vector<int32_t> encodeSegments(const std::vector<Segment>& segments, bool addBos) const = 0;
    /// The raw bytes a token stands for (byte tokens <0x0A> decoded, ▁ → space, byte-level BPE unmapped).
    /// Control tokens return their text (e.g. "</s>") only when includeSpecial is true, else "".
    virtual std::string tokenBytes(int32_t id, bool includeSpecial = false) const = 0;
    /// The vocabulary piece as stored (for display in `wb tokenize`).
    virtual std::string piece(int32_t id) const = 0;
    virtual bool isControl(int32_t id) const = 0;

    /// Concatenated tokenBytes; SPM strips the single leading space that the encoder added.
    virtual std::string decode(const std::vector<int32_t>& ids, bool includeSpecial = false) const = 0;

    int32_t bos() const { return m_bos; }
    int32_t eos() const { return m_eos; }
    /// Tokens that end a generation (eos, eot, <|im_end|>, ...).
    const std::vector<int32_t>& stopTokens() const { return m_stopTokens; }
    bool addBosByDefault() const { return m_addBos; }
    /// The checkpoint's Jinja chat template, if it ships one.
    const std::optional<std::string>& chatTemplate() const { return m_chatTemplate; }
    /// Id of a special token by its text, if it is one.
    virtual std::optional<int32_t> specialTokenId(std::string_view text) const = 0;

protected:
    int32_t m_bos = -1;
    int32_t m_eos = -1;
    bool m_addBos = true;
    std::vector<int32_t> m_stopTokens;
    std::optional<std::string> m_chatTemplate;
};

}  // namespace wb
