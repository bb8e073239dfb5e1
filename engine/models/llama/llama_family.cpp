#include "models/llama/llama_family.h"

#include "api/chat_prompt.h"
#include "models/decoder/generator.h"

namespace wb {

namespace {

/// The text of a message whose parts are all text (joined), or its content.
std::string flatText(const ChatMessage& m) {
    if (m.parts.empty()) return m.content;
    std::string s;
    for (const ContentPart& p : m.parts)
        if (p.kind == ContentPart::Kind::Text) s += p.text;
    return s;
}

class LlamaEngineModel final : public EngineModel {
public:
    explicit LlamaEngineModel(std::unique_ptr<LlamaModel> m) : m_model(std::move(m)) {}

    const ModelConfig& config() const override { return m_model->config(); }
    const Tokenizer& tokenizer() const override { return m_model->tokenizer(); }

    Result<PreparedPrompt> prepare(const Request& r, bool, const PrepareObserver*) override {
        const Tokenizer& tok = m_model->tokenizer();
        PreparedPrompt p;
        if (!r.promptTokens.empty()) {
            p.ids = r.promptTokens;
        } else if (!r.messages.empty()) {
            std::vector<ChatMessage> flat;
            for (size_t i = 0; i < r.messages.size(); ++i) {
                if (r.messages[i].hasImages())
                    return makeError("message " + std::to_string(i) + " has an image, but the model '" +
                                     m_model->config().name + "' is text-only and does not accept images");
                flat.push_back({r.messages[i].role, flatText(r.messages[i]), {}});
            }
            auto c = buildChatPrompt(tok, flat, true, r.enableThinking);
            if (!c) return c.error();
            p.ids = std::move(c->ids);
            p.stopString = c->stopString;
        } else {
            p.ids = tok.encode(r.prompt, tok.addBosByDefault(), SpecialTokens::Plain);
        }
        return p;
    }

    Result<void> forward(std::span<const ModelStep> batch, KvBlockPool& pool, float* logits) override {
        std::vector<BatchSequence> b;
        b.reserve(batch.size());
        for (const ModelStep& s : batch) b.push_back({s.tokens, s.start, s.blocks, s.wantLogits});
        return m_model->forwardBatch(b, pool, logits);
    }

    std::vector<int32_t> stopIds() const override { return stopTokenIds(*m_model); }
    int64_t weightBytes() const override { return m_model->weightBytes(); }
    std::string deviceSummary() const override { return m_model->deviceSummary(); }
    bool kvOnHost() const override { return m_model->kvOnHost(); }
    bool onGpus() const override { return m_model->onGpus(); }
    std::vector<DeviceShare> devices() const override { return decoderDeviceShares(*m_model); }
    std::string needsReload() const override { return m_model->needsReload(); }
    std::vector<int> deviceOrdinals() const override { return m_model->deviceOrdinals(); }
    Result<void> reserveStepMemory(int64_t maxTokens, int64_t maxSeqs, int64_t maxContext,
                                   int64_t blockSize) override {
        return m_model->reserveStepMemory(maxTokens, maxSeqs, maxContext, blockSize);
    }

private:
    std::unique_ptr<LlamaModel> m_model;
};

Result<std::unique_ptr<EngineModel>> loadLlama(const ModelIdentity& id, const LoadOptions& options, int64_t) {
    auto m = LlamaModel::load(id.path, options);
    if (!m) return m.error();
    return std::unique_ptr<EngineModel>(new LlamaEngineModel(std::move(*m)));
}

Result<ModelInfo> inspectLlama(const ModelIdentity& id) {
    auto s = summarizeModel(id.path);
    if (!s) return s.error();
    ModelInfo info;
    info.format = s->format;
    info.architecture = s->config.architecture;
    info.name = s->config.name;
    info.config = s->config;
    info.numParameters = s->numParameters;
    info.tensorCountByDtype = s->tensorCountByDtype;
    info.weightBytesByPrecision = s->weightBytesByPrecision;
    info.kvBytesPerToken = s->kvBytesPerToken;
    info.tokenizerKind = s->tokenizerKind;
    return info;
}

}  // namespace

const ModelFamily& llamaFamily() {
    static const ModelFamily family = {"llama",
                                       {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"},
                                       {"llama", "mistral", "qwen2"},
                                       {"llama", "mistral", "qwen2"},
                                       &loadLlama,
                                       &inspectLlama};
    return family;
}

}  // namespace wb
