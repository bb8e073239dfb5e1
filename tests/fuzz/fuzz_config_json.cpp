// A Hugging Face folder's config.json as the app reads it: the registry's architecture probe (identifyModel),
// the Llama-family config (configFromHfFolder and its validation) and GLM-4 / GLM-4.1V's (glmConfigFromJson).
// Seeds: the stories260K HF folder's config.json (tools/fuzz.sh) and tests/fuzz/seeds/fuzz_config_json.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "models/decoder/model_config.h"
#include "models/glm/glm_config.h"
#include "models/model_registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const auto dir = wbfuzz::freshFolder("cfg");
    const std::string text(wbfuzz::view(data, size));
    wbfuzz::writeFile(dir / "config.json", text);
    if (auto id = wb::identifyModel(dir.string())) (void)wb::familyOf(*id);
    if (auto cfg = wb::configFromHfFolder(dir.string())) (void)cfg->validate(dir.string());
    if (auto g = wb::glmConfigFromJson(text, "config.json")) (void)g->validate("config.json");
    return 0;
}
