// tokenizer.json (Hugging Face tokenizers: byte-level BPE, added tokens, pre-tokenizer) loaded as a model
// folder's tokenizer, then used: encode, decode, every piece. Seeds: tests/fuzz/seeds/fuzz_tokenizer_json (the
// fixtures hold no tokenizer.json).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto dir = wbfuzz::freshFolder("tokjson");
    wbfuzz::writeFile(dir / "tokenizer.json", wbfuzz::view(data, size));
    auto tok = wb::Tokenizer::fromHfFolder(dir.string());
    if (!tok) return 0;
    wbfuzz::exerciseTokenizer(**tok, wbfuzz::view(data, size));
    return 0;
}
