// Deliberately broken comparison-target plugins, one per way a plugin can be bad (WB_BROKEN_KIND):
// 1 built for another API version, 2 no entry symbol, 3 metadata that is not JSON, 4 compatVersion newer than
// version, 5 a table with a missing function, 6 a version-2 table without startChat. The host must report each
// one and carry on. Kind 7 is not broken: a version-1 plugin (ids and images only), which the host still loads.
#include <cstddef>
#include <cstdlib>

#include "api/target_plugin_api.h"

namespace {

#if WB_BROKEN_KIND == 3
const char kMetadata[] = R"({"id": "broken", "name": "Broken", "version": "1.0.0",, })";
#elif WB_BROKEN_KIND == 4
const char kMetadata[] = R"({"id": "broken4", "name": "Broken", "version": "1.0.0", "compatVersion": "2.0.0",
                            "apiVersion": 2})";
#elif WB_BROKEN_KIND == 7
const char kMetadata[] = R"({"id": "legacy1", "name": "A version-1 plugin", "version": "1.0.0",
                            "compatVersion": "1.0.0", "apiVersion": 1})";
#else
const char kMetadata[] = R"({"id": "broken", "name": "Broken", "version": "1.0.0", "compatVersion": "1.0.0",
                            "apiVersion": 2})";
#endif
#if WB_BROKEN_KIND == 7
constexpr uint32_t kApi = 1;
constexpr uint32_t kSize = uint32_t(offsetof(WbTargetPlugin, startChat));  // version 1's table ends here
#else
constexpr uint32_t kApi = WB_TARGET_PLUGIN_API_VERSION;
constexpr uint32_t kSize = uint32_t(sizeof(WbTargetPlugin));
#endif

void* openTarget(const char*, char**) { return nullptr; }
void closeTarget(void*) {}
char* modelName(void*) { return nullptr; }
#if WB_BROKEN_KIND != 5
void start(void*, const int32_t*, size_t, int64_t, WbTargetEventFn, void*) {}
#endif
int32_t health(void*, char**) { return 0; }
char* sampleMetrics(void*) { return nullptr; }
void freeString(char* s) { std::free(s); }

#if WB_BROKEN_KIND != 6
void startChat(void*, const char*, WbTargetEventFn, void*) {}
#endif

const WbTargetPlugin kTable{kApi, kSize, kMetadata,
                              &openTarget, &closeTarget, &modelName,
#if WB_BROKEN_KIND == 5
                              nullptr,
#else
                              &start,
#endif
                              &health, &sampleMetrics, &freeString, /* startImages (optional) */ nullptr,
#if WB_BROKEN_KIND == 6
                              nullptr
#else
                              &startChat
#endif
};

}  // namespace

extern "C" WB_TARGET_PLUGIN_EXPORT uint32_t wbTargetPluginApiVersion(void) {
#if WB_BROKEN_KIND == 1
    return WB_TARGET_PLUGIN_API_VERSION + 41;  // a plugin from some future (or past) workbench
#else
    return kApi;
#endif
}

#if WB_BROKEN_KIND != 2
extern "C" WB_TARGET_PLUGIN_EXPORT const WbTargetPlugin* wbTargetPluginEntry(void) { return &kTable; }
#endif
