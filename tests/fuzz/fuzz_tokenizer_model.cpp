// tokenizer.model (SentencePiece protobuf, through Debian's libsentencepiece, plus the engine's wrapper of it)
// loaded as a model folder's tokenizer, then used. Seeds: the fixtures' tok512.model and the Llama 2
// tokenizer.model (tools/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "fuzz_common.h"
#include "fuzz_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto dir = wbfuzz::freshFolder("tokmodel");
    wbfuzz::writeFile(dir / "tokenizer.model", wbfuzz::view(data, size));
    auto tok = wb::Tokenizer::fromHfFolder(dir.string());
    if (!tok) return 0;
    wbfuzz::exerciseTokenizer(**tok);
    return 0;
}
