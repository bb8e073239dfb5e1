#include "models/glm/glm_family.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <list>
#include <mutex>
#include <optional>

#include "api/chat_prompt.h"
#include "backend/cpu/cpu_ops.h"
#include "media/glm4v_image_processor.h"
#include "media/image.h"
#include "models/decoder/generator.h"
#include "models/glm/glm_config.h"
#include "formats/gguf.h"
#include "models/glm/glm_decoder.h"
#include "models/glm/glm_gguf_source.h"
#include "models/glm/glm_model.h"
#include "models/glm/glm_prompt.h"
#include "models/glm/glm_summary.h"
#include "models/glm/glm_tiny.h"
#include "template/chat_template.h"

namespace wb {

namespace {

/// The bytes of an image part: its own, or those of its file (read here, on the thread that prepares the
/// request). An error names the file and why it cannot be read.
Result<std::shared_ptr<const std::vector<uint8_t>>> imageBytes(const ContentPart& part, const std::string& where) {
    if (part.image) return part.image;
    if (part.imagePath.empty()) return makeError(where + ": an image part has no data");
    const std::string& path = part.imagePath;
    const int64_t limit = DecodeLimits{}.maxEncodedBytes;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        return makeError(where + ": cannot read the image file '" + path + "': it is a directory");
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return makeError(where + ": cannot read the image file '" + path + "': " + std::strerror(errno));
    const std::streamoff size = f.tellg();
    if (size < 0) return makeError(where + ": cannot read the image file '" + path + "'");
    if (size == 0) return makeError(where + ": the image file '" + path + "' is empty");
    if (size > limit)
        return makeError(where + ": the image file '" + path + "' is " + std::to_string(size) +
                         " bytes, over the limit of " + std::to_string(limit) + " bytes for an encoded image");
    auto bytes = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(size));
    f.seekg(0);
    if (!f.read(reinterpret_cast<char*>(bytes->data()), size))
        return makeError(where + ": reading the image file '" + path + "' failed");
    return std::shared_ptr<const std::vector<uint8_t>>(std::move(bytes));
}

uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
    uint64_t h = 1469598103934665603ull;
    for (uint8_t b : bytes) h = (h ^ b) * 1099511628211ull;
    return h;
}

class GlmEngineModel final : public EngineModel {
public:
    /// text: GLM's text model on the device path (GPUs, tensor parallel); null: GlmModel runs everything on the CPU.
    GlmEngineModel(std::unique_ptr<GlmModel> m, int64_t maxImagePixels, std::unique_ptr<LlamaModel> text = nullptr)
        : m_model(std::move(m)), m_text(std::move(text)) {
        const GlmConfig& g = m_model->config();
        m_config = configFromGlm(g);
        m_config.eosTokenId = m_model->tokenizer().eos();
        if (maxImagePixels > 0) m_model->processorConfig().maxPixels = maxImagePixels;
        if (g.hasVision) m_visionPool = std::make_unique<ThreadPool>(m_model->threadPool().size());
        const Tokenizer& tok = m_model->tokenizer();
        if (g.hasVision)
            m_marker = tok.piece(g.imageStartTokenId) + tok.piece(g.imageTokenId) + tok.piece(g.imageEndTokenId);
        for (int32_t id : {g.imageTokenId, g.imageStartTokenId, g.imageEndTokenId, g.videoStartTokenId,
                           g.videoEndTokenId})
            if (id >= 0 && id < g.text.vocabSize) m_banned.push_back(id);
    }

    const ModelConfig& config() const override { return m_config; }
    const Tokenizer& tokenizer() const override { return m_model->tokenizer(); }
    bool acceptsImages() const override { return m_model->config().hasVision; }
    // Images are encoded on the engine's preparation thread with a thread pool of their own, so decoding steps go
    // on while a screenshot goes through the vision tower (the tower reads weights only).
    bool prepareOffLoop(const Request& r) const override {
        if (!m_model->config().hasVision) return false;
        for (const ChatMessage& m : r.messages)
            if (m.hasImages()) return true;
        return false;
    }

    Result<PreparedPrompt> prepare(const Request& r, bool encodeImages, const PrepareObserver* obs) override {
        const GlmConfig& g = m_model->config();
        const Tokenizer& tok = m_model->tokenizer();
        PreparedPrompt p;
        p.imageTokenId = g.hasVision ? g.imageTokenId : -1;
        if (!r.promptTokens.empty()) {
            auto rope = glmRopeIndex(r.promptTokens, {}, g);
            if (!rope) return makeError("prompt tokens: " + rope.error().message);
            p.ids = r.promptTokens;
            return p;
        }
        if (r.messages.empty()) {
            p.ids = tok.encode(r.prompt, tok.addBosByDefault(), SpecialTokens::Plain);
            return p;
        }
        // Render the template with sentinels for texts and image parts as {"type": "image"}.
        std::vector<const std::string*> texts;
        std::vector<std::shared_ptr<const std::vector<uint8_t>>> images;  // encoded bytes, files read
        std::vector<std::string> imageNames;                               // "image 2 (/path/shot.bmp)" in errors
        TemplateValue::List msgs;
        for (size_t i = 0; i < r.messages.size(); ++i) {
            const ChatMessage& m = r.messages[i];
            TemplateValue::Map mm;
            mm.set("role", TemplateValue(m.role));
            if (m.parts.empty()) {
                mm.set("content", TemplateValue(textSentinel(texts.size())));
                texts.push_back(&m.content);
            } else {
                TemplateValue::List parts;
                for (const ContentPart& part : m.parts) {
                    TemplateValue::Map pm;
                    if (part.kind == ContentPart::Kind::Image) {
                        if (!g.hasVision)
                            return makeError("message " + std::to_string(i) +
                                             " has an image, but this GLM checkpoint has no vision tower");
                        // A file part is read now, first thing: the caches below key images by their bytes.
                        auto bytes = imageBytes(part, "message " + std::to_string(i));
                        if (!bytes) return bytes.error();
                        if (!*bytes || (*bytes)->empty())
                            return makeError("message " + std::to_string(i) + ": an image part has no data");
                        pm.set("type", TemplateValue(std::string("image")));
                        images.push_back(std::move(*bytes));
                        imageNames.push_back("image " + std::to_string(images.size()) +
                                             (part.image ? std::string() : " (" + part.imagePath + ")"));
                    } else {
                        pm.set("type", TemplateValue(std::string("text")));
                        pm.set("text", TemplateValue(textSentinel(texts.size())));
                        texts.push_back(&part.text);
                    }
                    parts.push_back(TemplateValue(std::move(pm)));
                }
                mm.set("content", TemplateValue(std::move(parts)));
            }
            msgs.push_back(TemplateValue(std::move(mm)));
        }
        const std::string source = tok.chatTemplate() ? *tok.chatTemplate() : std::string(tinyGlmChatTemplate());
        auto t = ChatTemplate::parse(source);
        if (!t) return makeError("chat template: " + t.error().message);
        TemplateValue::Map extra;
        extra.set("enable_thinking", TemplateValue(r.enableThinking));
        auto rendered = t->renderChat(TemplateValue(std::move(msgs)), true, TemplateValue(std::move(extra)), "",
                                      tok.eos() >= 0 ? tok.piece(tok.eos()) : "");
        if (!rendered) return makeError("chat template: " + rendered.error().message);

        // Split: template text (parsed for special tokens; image slots cut out of it), message texts (plain).
        std::vector<GlmPromptPart> parts;
        size_t nextImage = 0;
        auto templateText = [&](std::string_view t) {
            while (!t.empty()) {
                const size_t at = m_marker.empty() ? std::string_view::npos : t.find(m_marker);
                const size_t end = std::min(at, t.size());
                if (end > 0) parts.push_back({GlmPromptPart::Kind::Template, std::string(t.substr(0, end)), -1});
                if (at == std::string_view::npos) break;
                parts.push_back({GlmPromptPart::Kind::Image, {}, int(nextImage++)});
                t.remove_prefix(at + m_marker.size());
            }
        };
        WB_TRY(splitAtSentinels(*rendered, texts.size(), templateText,
                                [&](size_t i) { parts.push_back({GlmPromptPart::Kind::Text, *texts[i], -1}); }));
        if (nextImage != images.size())
            return makeError("chat template: the request has " + std::to_string(images.size()) +
                             " images but the template placed " + std::to_string(nextImage) + " image slots");

        // Images: decode, size, preprocess and encode, or take the features of an image seen recently (a chat's
        // history sends its earlier images again with every turn).
        std::vector<GlmImageGrid> grids;
        std::vector<std::shared_ptr<const CachedImage>> cached(images.size());
        std::vector<std::optional<Glm4vImageInput>> inputs(images.size());
        const Glm4vProcessorConfig& pc = m_model->processorConfig();
        const size_t numImages = images.size();
        auto ofImages = [numImages](size_t k) {
            return numImages > 1 ? " (image " + std::to_string(k + 1) + " of " + std::to_string(numImages) + ")"
                                 : std::string();
        };
        for (size_t k = 0; k < images.size(); ++k) {
            if (obs && obs->isCancelled()) return makeError(kPrepareCancelled);
            const std::string& name = imageNames[k];
            const std::vector<uint8_t>& bytes = *images[k];
            const uint64_t hash = fnv1a(bytes);
            p.imageHashes.push_back(hash);
            if ((cached[k] = lookupImage(hash, bytes.size()))) {
                grids.push_back(cached[k]->grid);
                continue;
            }
            // A server counts a request's tokens (this, without encoding) and then submits it (this again): the
            // count's decoded pixels wait for the submit, so each new screenshot is decoded once.
            std::shared_ptr<const Image> img = takeDecoded(hash, bytes.size());
            if (!img) {
                if (obs) obs->stage("decoding the image" + ofImages(k));
                auto d = decodeImage(bytes, name);
                if (!d) return d.error();
                img = std::make_shared<const Image>(std::move(*d));
                ++m_decodes;
            }
            if (!encodeImages && pc.doResize) {
                // Counting only: the grid follows from the size.
                auto size = glm4vSmartResize(pc.temporalPatchSize, img->height, img->width, pc.temporalPatchSize,
                                             pc.factor(), pc.minPixels, pc.maxPixels);
                if (!size) return makeError(name + ": " + size.error().message);
                grids.push_back({1, size->first / pc.patchSize, size->second / pc.patchSize});
                keepDecoded(hash, bytes.size(), std::move(img));
                continue;
            }
            if (obs) obs->stage("resizing " + std::to_string(img->width) + "x" + std::to_string(img->height) + ofImages(k));
            auto in = glm4vPreprocess(*img, pc);
            if (!in) return makeError(name + ": " + in.error().message);
            grids.push_back({in->gridT, in->gridH, in->gridW});
            inputs[k] = std::move(*in);
        }
        auto built = buildGlmPrompt(tok, g, parts, grids);
        if (!built) return built.error();
        for (size_t k = 0; k < images.size() && encodeImages; ++k) {
            if (cached[k]) {
                p.imageFeatures.insert(p.imageFeatures.end(), cached[k]->features.begin(), cached[k]->features.end());
                continue;
            }
            std::function<bool(int, int)> onLayer;
            if (obs)
                onLayer = [&](int done, int total) {
                    obs->stage("vision tower " + std::to_string(done) + "/" + std::to_string(total) + ofImages(k));
                    return !obs->isCancelled();
                };
            auto f = m_model->encodeImage(*inputs[k], m_visionPool.get(), onLayer);
            if (!f && obs && obs->isCancelled()) return makeError(kPrepareCancelled);
            if (!f) return makeError(imageNames[k] + ": " + f.error().message);
            p.imageFeatures.insert(p.imageFeatures.end(), f->begin(), f->end());
            auto entry = std::make_shared<CachedImage>();
            entry->hash = p.imageHashes[k];
            entry->size = images[k]->size();
            entry->grid = grids[k];
            entry->features = std::move(*f);
            storeImage(std::move(entry));
        }
        p.ids = std::move(built->ids);
        if (!images.empty()) {
            p.positions = std::move(built->positions);
            p.ropeDelta = built->ropeDelta;
        }
        return p;
    }

    Result<void> forward(std::span<const ModelStep> batch, KvBlockPool& pool, float* logits) override {
        const int64_t dim = m_model->config().text.dim;
        std::vector<GlmSequenceStep> steps(batch.size());
        std::vector<std::vector<int64_t>> positions(batch.size());
        int64_t rows = 0;
        for (size_t k = 0; k < batch.size(); ++k) {
            const ModelStep& b = batch[k];
            GlmSequenceStep& st = steps[k];
            st.tokens = b.tokens;
            st.startIndex = b.start;
            st.blocks = b.blocks;
            st.wantLogits = b.wantLogits;
            rows += b.wantLogits;
            const PreparedPrompt* p = b.prompt;
            if (!p || p->positions.empty()) continue;  // text positions: index (+ 0)
            st.positionOffset = p->ropeDelta;
            const int64_t promptLen = int64_t(p->ids.size()), n = int64_t(b.tokens.size());
            if (b.start >= promptLen) continue;  // after the prompt: index + ropeDelta
            auto& pos = positions[k];
            pos.resize(size_t(3 * n));
            for (int a = 0; a < 3; ++a)
                for (int64_t i = 0; i < n; ++i) {
                    const int64_t at = b.start + i;
                    pos[size_t(a * n + i)] = at < promptLen ? p->positions[size_t(a * promptLen + at)] : at + p->ropeDelta;
                }
            st.positions = pos;
            int64_t before = 0, inside = 0;
            for (int64_t i = 0; i < b.start; ++i) before += p->ids[size_t(i)] == p->imageTokenId;
            for (int64_t i = b.start; i < std::min(promptLen, b.start + n); ++i)
                inside += p->ids[size_t(i)] == p->imageTokenId;
            if ((before + inside) * dim > int64_t(p->imageFeatures.size()))
                return makeError("internal: image features do not cover the prompt's image tokens");
            st.imageFeatures = std::span<const float>(p->imageFeatures.data() + before * dim, size_t(inside * dim));
        }
        if (m_text) {
            // The device path: the same positions and feature rows, as BatchSequence entries.
            std::vector<BatchSequence> seqs(steps.size());
            for (size_t k = 0; k < steps.size(); ++k) {
                const GlmSequenceStep& st = steps[k];
                seqs[k] = {st.tokens, st.startIndex, st.blocks, st.wantLogits, st.positions, st.positionOffset,
                           st.imageFeatures};
            }
            WB_TRY(m_text->forwardBatch(seqs, pool, logits));
        } else {
            WB_TRY(m_model->forward(steps, pool, logits));
        }
        // Image and video markers come only from image parts: the model never generates them.
        const int64_t V = m_config.vocabSize;
        for (int64_t r = 0; r < rows; ++r)
            for (int32_t id : m_banned) logits[r * V + id] = -std::numeric_limits<float>::infinity();
        return {};
    }

    std::vector<int32_t> stopIds() const override {
        return stopTokenIds(m_model->tokenizer(), m_model->config().eosTokenIds);
    }
    int64_t weightBytes() const override {
        return m_text ? m_text->weightBytes() + m_model->visionWeightBytes() : m_model->weightBytes();
    }
    std::string deviceSummary() const override {
        if (m_text) return m_text->deviceSummary() + (m_model->config().hasVision ? ", vision tower on the cpu" : "");
        return "cpu (" + std::to_string(m_model->threadPool().size()) + " threads, " +
               cpu::isaName(cpu::activeIsa()) + ")";
    }
    bool kvOnHost() const override { return m_text ? m_text->kvOnHost() : true; }
    bool onGpus() const override { return m_text && m_text->onGpus(); }
    std::vector<DeviceShare> devices() const override {
        return m_text ? decoderDeviceShares(*m_text) : std::vector<DeviceShare>{};
    }
    std::string needsReload() const override { return m_text ? m_text->needsReload() : std::string(); }
    std::vector<int> deviceOrdinals() const override { return m_text ? m_text->deviceOrdinals() : std::vector<int>{}; }
    Result<void> reserveStepMemory(int64_t maxTokens, int64_t maxSeqs, int64_t maxContext,
                                   int64_t blockSize) override {
        if (!m_text) return {};
        return m_text->reserveStepMemory(maxTokens, maxSeqs, maxContext, blockSize);
    }

    /// Images encoded by this process (tests read it).
    int64_t imagesEncoded() const override {
        std::lock_guard lock(m_cacheMutex);
        return m_encoded;
    }
    int64_t imagesDecoded() const override { return m_decodes.load(); }

private:
    struct CachedImage {
        uint64_t hash = 0;
        size_t size = 0;
        GlmImageGrid grid;
        std::vector<float> features;
    };
    // Most recently used first; bounded by bytes of features.
    std::shared_ptr<const CachedImage> lookupImage(uint64_t hash, size_t size) {
        std::lock_guard lock(m_cacheMutex);
        for (auto it = m_cache.begin(); it != m_cache.end(); ++it)
            if ((*it)->hash == hash && (*it)->size == size) {
                auto e = *it;
                m_cache.erase(it);
                m_cache.push_front(e);
                return e;
            }
        return nullptr;
    }
    void storeImage(std::shared_ptr<const CachedImage> e) {
        std::lock_guard lock(m_cacheMutex);
        ++m_encoded;
        m_cacheBytes += int64_t(e->features.size() * sizeof(float));
        m_cache.push_front(std::move(e));
        while (m_cache.size() > 1 && m_cacheBytes > kImageCacheBytes) {
            m_cacheBytes -= int64_t(m_cache.back()->features.size() * sizeof(float));
            m_cache.pop_back();
        }
    }
    static constexpr int64_t kImageCacheBytes = int64_t(256) << 20;

    // Decoded pixels a count left for the submit that follows it, by content; taken (not copied) by the next
    // preparation of the same bytes. Bounded: a count whose request never comes (a 400) is evicted oldest first.
    struct DecodedImage {
        uint64_t hash = 0;
        size_t size = 0;
        std::shared_ptr<const Image> image;
    };
    std::shared_ptr<const Image> takeDecoded(uint64_t hash, size_t size) {
        std::lock_guard lock(m_cacheMutex);
        for (auto it = m_decoded.begin(); it != m_decoded.end(); ++it)
            if (it->hash == hash && it->size == size) {
                auto img = std::move(it->image);
                m_decodedBytes -= int64_t(img->rgb.size());
                m_decoded.erase(it);
                return img;
            }
        return nullptr;
    }
    void keepDecoded(uint64_t hash, size_t size, std::shared_ptr<const Image> img) {
        std::lock_guard lock(m_cacheMutex);
        if (int64_t(img->rgb.size()) > kDecodedBytes) return;
        m_decodedBytes += int64_t(img->rgb.size());
        m_decoded.push_front({hash, size, std::move(img)});
        while (m_decodedBytes > kDecodedBytes) {
            m_decodedBytes -= int64_t(m_decoded.back().image->rgb.size());
            m_decoded.pop_back();
        }
    }
    static constexpr int64_t kDecodedBytes = int64_t(128) << 20;
    std::list<DecodedImage> m_decoded;
    int64_t m_decodedBytes = 0;
    std::atomic<int64_t> m_decodes{0};

    std::unique_ptr<GlmModel> m_model;
    std::unique_ptr<LlamaModel> m_text;
    std::unique_ptr<ThreadPool> m_visionPool;
    mutable std::mutex m_cacheMutex;
    std::list<std::shared_ptr<const CachedImage>> m_cache;
    int64_t m_cacheBytes = 0;
    int64_t m_encoded = 0;
    ModelConfig m_config;
    std::string m_marker;  // <|begin_of_image|><|image|><|end_of_image|> as the template writes it
    std::vector<int32_t> m_banned;
};

Result<std::unique_ptr<EngineModel>> loadGlm(const ModelIdentity& id, const LoadOptions& options,
                                             int64_t maxImagePixels) {
    GlmLoadOptions go;
    go.numThreads = options.numThreads;
    const bool onDevices = options.device != DeviceKind::Cpu || options.parallelDegree != 1;
    // On devices, GlmModel keeps the tokenizer and the vision tower, in the file's own dtype (the text weights
    // stay unread in the mapping); the text model runs on the device path.
    if (!onDevices) go.weightType = precisionDType(options.precision);
    go.hugePages = options.hugePages && !onDevices;
    go.interleaveBlocks = !onDevices && cpu::interleavesBlocks();
    if (id.format == "gguf") {
        // llama.cpp's pair: the glm4 text file and its mmproj (given, or the one beside it).
        if (onDevices)
            return makeError(id.path + ": GLM GGUF files run on one CPU device for now (no --device cuda / --tp)");
        auto mm = pairedMmproj(id.path, options.mmprojPath);
        if (!mm) return mm.error();
        auto g = GlmModel::loadGguf(id.path, *mm, go);
        if (!g) return g.error();
        if (!(*g)->hasTokenizer()) return makeError(id.path + ": no tokenizer in the GGUF metadata");
        return std::unique_ptr<EngineModel>(new GlmEngineModel(std::move(*g), maxImagePixels, nullptr));
    }
    if (!options.mmprojPath.empty())
        return makeError(options.mmprojPath + ": --mmproj goes with a GGUF text model; " + id.path +
                         " is a folder with its own vision tower");
    auto m = GlmModel::load(id.path, go);
    if (!m) return m.error();
    if (!(*m)->hasTokenizer()) return makeError(id.path + ": no tokenizer (tokenizer.json) in the folder");
    std::unique_ptr<LlamaModel> text;
    if (onDevices) {
        const DecoderLayout layout = glmDecoderLayout((*m)->config());
        auto t = LlamaModel::load(id.path, options, &layout);
        if (!t) return t.error();
        text = std::move(*t);
    }
    return std::unique_ptr<EngineModel>(new GlmEngineModel(std::move(*m), maxImagePixels, std::move(text)));
}

// From config.json alone (summarizeGlmFolder): no safetensors file is opened, so a 20 GB checkpoint is planned
// before any of it is read.
// A GGUF pair: the config from the text file's metadata (and the mmproj beside it), sizes from the tensor headers.
Result<ModelInfo> inspectGlmGguf(const ModelIdentity& id) {
    auto t = GgufFile::open(id.path);
    if (!t) return t.error();
    auto mmPath = pairedMmproj(id.path, "");
    if (!mmPath) return mmPath.error();
    std::shared_ptr<GgufFile> mm;
    if (!mmPath->empty()) {
        auto m = GgufFile::open(*mmPath);
        if (!m) return m.error();
        mm = *m;
    }
    auto cfg = glmConfigFromGguf(**t, mm.get());
    if (!cfg) return cfg.error();
    ModelInfo info;
    info.format = "gguf";
    info.architecture = cfg->architecture;
    info.config = configFromGlm(*cfg);
    info.name = (*t)->getString("general.name").value_or(std::filesystem::path(id.path).stem().string());
    info.config.name = info.name;
    info.hasVision = cfg->hasVision;
    int64_t bytes = 0;
    for (const GgufFile* f : {t->get(), mm.get()}) {
        if (!f) continue;
        for (const TensorInfo& ti : f->tensors()) {
            info.numParameters += ti.numElements();
            if (f == mm.get()) info.visionParameters += ti.numElements();
            info.tensorCountByDtype[std::string(dtypeName(ti.dtype))] += 1;
            bytes += ti.numBytes;
        }
    }
    info.weightBytesByPrecision["native"] = bytes;
    const GlmTextConfig& tc = cfg->text;
    info.kvBytesPerToken = 2 * tc.numLayers * tc.numKvHeads * tc.headDim * int64_t(sizeof(float));
    info.tokenizerKind = "gguf-gpt2";
    return info;
}

Result<ModelInfo> inspectGlm(const ModelIdentity& id) {
    if (id.format == "gguf") return inspectGlmGguf(id);
    auto s = summarizeGlmFolder(id.path);
    if (!s) return s.error();
    ModelInfo info;
    info.format = "hf-safetensors";
    info.architecture = s->config.architecture;
    info.config = configFromGlm(s->config);
    info.name = info.config.name;
    info.numParameters = s->numParameters();
    info.visionParameters = s->visionParameters();
    info.hasVision = s->config.hasVision;
    info.weightBytesByPrecision = s->weightBytesByPrecision;
    info.kvBytesPerToken = s->kvBytesPerToken;
    std::error_code ec;
    info.tokenizerKind = std::filesystem::exists(std::filesystem::path(id.path) / "tokenizer.json", ec)
                                 ? "tokenizer.json"
                                 : "none";
    for (const GlmShardPlan& p : s->tensorParallel)
        info.tensorParallel.push_back({p.degree, p.weightBytesByPrecision, p.kvBytesPerToken});
    return info;
}

}  // namespace

const ModelFamily& glmFamily() {
    static const ModelFamily family = {"glm",
                                       {"Glm4ForCausalLM", "Glm4vForConditionalGeneration"},
                                       {"glm4", "glm4v"},
                                       {"glm4"},  // llama.cpp's GLM-4 (+ a glm4v mmproj for GLM-4.1V)
                                       &loadGlm,
                                       &inspectGlm};
    return family;
}

}  // namespace wb
