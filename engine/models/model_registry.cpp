#include "models/model_registry.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "formats/gguf.h"
#include "formats/json_text.h"
#include "models/glm/glm_family.h"
#include "models/llama/llama_family.h"

namespace wb {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::string supportedList(bool gguf) {
    std::string out;
    for (const ModelFamily* f : modelFamilies())
        for (const std::string& a : gguf ? f->ggufArchitectures : f->hfArchitectures) out += (out.empty() ? "" : ", ") + a;
    return out;
}

}  // namespace

const std::vector<const ModelFamily*>& modelFamilies() {
    static const std::vector<const ModelFamily*> families = {&llamaFamily(), &glmFamily()};
    return families;
}

Result<ModelIdentity> identifyModel(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    ModelIdentity id;
    id.path = path;
    if (fs::is_directory(path, ec)) {
        id.format = "hf";
        const std::string cfg = (fs::path(path) / "config.json").string();
        std::ifstream in(cfg, std::ios::binary);
        if (!in) return makeError(cfg + ": cannot open");
        std::stringstream ss;
        ss << in.rdbuf();
        auto j = parseJsonObject(ss.str(), cfg);
        if (!j) return j.error();
        const auto& a = (*j)["architectures"];
        if (a.is_array() && !a.empty() && a[0].is_string()) {
            id.architecture = a[0].get<std::string>();
        } else if (j->contains("model_type") && (*j)["model_type"].is_string()) {
            id.architecture = (*j)["model_type"].get<std::string>();
        } else {
            return makeError(cfg + ": names no architecture (neither architectures nor model_type); supported: " +
                             supportedList(false));
        }
        return id;
    }
    if (!fs::exists(path, ec)) return makeError(path + ": no such file or folder");
    auto g = GgufFile::open(path);
    if (!g) return g.error();
    auto arch = (*g)->getString("general.architecture");
    if (!arch) return makeError(path + ": metadata general.architecture is missing");
    id.format = "gguf";
    id.architecture = *arch;
    return id;
}

Result<const ModelFamily*> familyOf(const ModelIdentity& id) {
    const bool gguf = id.format == "gguf";
    for (const ModelFamily* f : modelFamilies()) {
        if (gguf ? contains(f->ggufArchitectures, id.architecture)
                 : contains(f->hfArchitectures, id.architecture) || contains(f->hfModelTypes, id.architecture))
            return f;
    }
    if (gguf)
        return makeError(id.path + ": unsupported architecture \"" + id.architecture +
                         "\" (general.architecture); supported: " + supportedList(true));
    return makeError((std::filesystem::path(id.path) / "config.json").string() + ": unsupported architecture \"" +
                     id.architecture + "\" (architectures); supported: " + supportedList(false));
}

namespace {

// The family that takes the model at `path`, with what was read to decide it.
struct Resolved {
    ModelIdentity id;
    const ModelFamily* family = nullptr;
};

Result<Resolved> resolve(const std::string& path) {
    auto id = identifyModel(path);
    if (!id) return id.error();
    auto family = familyOf(*id);
    if (!family) return family.error();
    return Resolved{std::move(*id), *family};
}

}  // namespace

Result<std::string> modelFamily(const std::string& path) {
    auto r = resolve(path);
    if (!r) return r.error();
    return r->family->name;
}

Result<ModelInfo> inspectModel(const std::string& path) {
    auto r = resolve(path);
    if (!r) return r.error();
    auto info = r->family->inspect(r->id);
    if (!info) return info.error();
    info->path = path;
    info->family = r->family->name;
    return info;
}

Result<std::unique_ptr<EngineModel>> loadEngineModel(const std::string& path, const LoadOptions& options,
                                                     int64_t maxImagePixels) {
    auto r = resolve(path);
    if (!r) return r.error();
    return r->family->load(r->id, options, maxImagePixels);
}

}  // namespace wb
