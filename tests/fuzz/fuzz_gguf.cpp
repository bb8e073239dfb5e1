// GGUF model files as `wb` and the workbench open them: the reader (metadata, tensor infos and their bounds),
// the Llama-family config from the metadata, the tokenizer from the metadata (SPM or byte-level BPE) and the
// chat template it ships; for llama.cpp's GLM files (general.architecture glm4), the GLM config from the text
// metadata and, with the same file as the mmproj, from the clip.* keys, and the pair opened as GlmModel reads it
// (HF-name lookups, the two patch-kernel slices joined). Seeds: the fixtures' GGUF files (tools/fuzz.sh) and a
// tiny GLM text + mmproj file (committed).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_tokenizer.h"
#include "formats/gguf.h"
#include "models/decoder/model_config.h"
#include "models/glm/glm_gguf_source.h"
#include "template/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto path = wbfuzz::scratchDir() / "model.gguf";
    wbfuzz::writeFile(path, wbfuzz::view(data, size));
    auto g = wb::GgufFile::open(path.string());
    if (!g) return wbfuzz::note(g.error().message), 0;
    if (auto cfg = wb::configFromGguf(**g)) {
        auto v = cfg->validate(path.string());
        wbfuzz::note(v ? "config ok" : v.error().message);
    } else {
        wbfuzz::note(cfg.error().message);
    }
    if ((*g)->getString("general.architecture").value_or("") == "glm4") {
        auto text = wb::glmConfigFromGguf(**g, nullptr);
        wbfuzz::note(text ? "glm4 config ok" : text.error().message);
        auto pair = wb::openGlmGguf(path.string(), path.string(), false);
        if (pair) {
            for (const char* n : {"model.language_model.layers.0.self_attn.q_proj.weight", "lm_head.weight",
                                  "model.visual.patch_embed.proj.weight", "model.visual.blocks.0.attn.qkv.weight"})
                if (const wb::TensorInfo* t = pair->lookup(n); t && t->numBytes > 0)
                    wbfuzz::note(std::to_string(t->data[0] ^ t->data[t->numBytes - 1]));
        } else {
            wbfuzz::note(pair.error().message);
        }
    }
    auto tok = wb::Tokenizer::fromGguf(**g);
    if (!tok) return wbfuzz::note(tok.error().message), 0;
    wbfuzz::note("tokenizer ok: " + (*tok)->kind() + ", " + std::to_string((*tok)->vocabSize()) + " ids");
    wbfuzz::exerciseTokenizer(**tok);
    if (const auto& t = (*tok)->chatTemplate()) {
        wb::ChatTemplateOptions opt;
        opt.maxLoopIterations = 100'000;
        opt.maxOutputBytes = 1u << 20;
        (void)wb::ChatTemplate::parse(*t, opt);
    }
    return 0;
}
