// One safetensors file: the 8-byte header length, the JSON header, dtypes, shapes and data offsets against the
// file's size, then the folder reader over it (no index: every *.safetensors of the folder). Seed: the
// stories260K HF folder's model.safetensors (tools/fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto dir = wbfuzz::freshFolder("st");
    static const auto path = dir / "model.safetensors";
    wbfuzz::writeFile(path, wbfuzz::view(data, size));
    auto f = wb::SafetensorsFile::open(path.string());
    if (f) {
        // Every tensor the reader accepted lies inside the mapping: touch its first and last byte.
        const uint8_t* base = (*f)->mappedFile()->data();
        const size_t n = (*f)->mappedFile()->size();
        for (const auto& t : (*f)->tensors()) {
            if (t.numBytes == 0) continue;
            if (t.data < base || t.data + t.numBytes > base + n) __builtin_trap();
            volatile uint8_t a = t.data[0], b = t.data[t.numBytes - 1];
            (void)a;
            (void)b;
        }
    }
    (void)wb::SafetensorsSet::openFolder(dir.string());
    return 0;
}
