// model.safetensors.index.json: the weight map that joins a checkpoint's shards (file names confined to the
// folder, every listed tensor found in its shard, no tensor in two shards). The folder holds two small valid
// shards written once; the input is the index. Seeds: tests/fuzz/seeds/fuzz_safetensors_index.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "formats/safetensors.h"
#include "fuzz_common.h"

namespace {

// A safetensors file of F32 tensors of 2 values each, named as given.
std::string shard(std::initializer_list<const char*> names) {
    std::string header = "{";
    size_t off = 0;
    for (const char* n : names) {
        if (header.size() > 1) header += ",";
        header += std::string("\"") + n + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" +
                  std::to_string(off) + "," + std::to_string(off + 8) + "]}";
        off += 8;
    }
    header += "}";
    std::string out(8, '\0');
    const uint64_t len = header.size();
    std::memcpy(out.data(), &len, 8);
    return out + header + std::string(off, '\x01');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto dir = [] {
        auto d = wbfuzz::freshFolder("idx");
        wbfuzz::writeFile(d / "model-00001-of-00002.safetensors", shard({"a.weight", "b.weight"}));
        wbfuzz::writeFile(d / "model-00002-of-00002.safetensors", shard({"c.weight", "lm_head.weight"}));
        return d;
    }();
    wbfuzz::writeFile(dir / "model.safetensors.index.json", wbfuzz::view(data, size));
    auto set = wb::SafetensorsSet::openFolder(dir.string());
    if (set)
        for (const auto& [name, t] : (*set)->tensors())
            if ((*set)->find(name) == nullptr || t.numBytes != 8) __builtin_trap();
    return 0;
}
