// GGUF model files as `wb` and the workbench open them: the reader (metadata, tensor infos and their bounds),
// the Llama-family config from the metadata, the tokenizer from the metadata (SPM or byte-level BPE) and the
// chat template it ships. Seeds: the fixtures' GGUF files (tools/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_tokenizer.h"
#include "formats/gguf.h"
#include "models/decoder/model_config.h"
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
