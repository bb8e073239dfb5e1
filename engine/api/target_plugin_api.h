/* The comparison-target plugin interface: a C ABI, so a plugin built by another compiler (or in another language)
 * loads as well as one built with the workbench, and no C++ type crosses the boundary. Modelled on ggml's
 * backend API version and Qt Creator's plugin metadata:
 *
 *   - a plugin is a shared library exporting two functions, wbTargetPluginApiVersion() and wbTargetPluginEntry();
 *   - the host reads the version first and loads nothing else from a plugin built for another version, since the
 *     table's layout is only known for its own version;
 *   - the table carries JSON metadata: id, name, version, compatVersion (the oldest plugin version this one can
 *     replace, as Qt Creator's CompatVersion), apiVersion, and what the flavour knows about its server (launch
 *     line template, health probe path, the metrics where it reports memory and KV use).
 *
 * Any change to a struct below bumps WB_TARGET_PLUGIN_API_VERSION, except functions appended at the end of the
 * table: those are optional, and the host uses one only when the plugin's structSize covers it and it is not NULL
 * (so plugins built before it still load). Strings returned by a plugin are freed with its freeString; strings
 * and buffers passed in belong to the host and are only valid during the call.
 *
 * Versions: 1 had token-id prompts (start) and images + ids (startImages); 2 adds startChat, the workload's own
 * chat messages (text and image parts) as JSON, required of a version-2 plugin. The host loads both: a version-1
 * plugin's table is the prefix of version 2's up to startChat, and its chat and image requests go as before
 * (ids, or startImages). Any other version is refused with the versions the host speaks. */
#ifndef WB_TARGET_PLUGIN_API_H
#define WB_TARGET_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WB_TARGET_PLUGIN_API_VERSION 2u
/* The oldest plugin API version this host still loads. */
#define WB_TARGET_PLUGIN_API_VERSION_MIN 1u

#if defined(_WIN32)
#define WB_TARGET_PLUGIN_EXPORT __declspec(dllexport)
#else
#define WB_TARGET_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

enum WbTargetEventType { WB_TARGET_EVENT_FINISHED = 0, WB_TARGET_EVENT_ERROR = 1 };

/* The one event a request ends with; timings are client-side, in milliseconds from the request's start. */
typedef struct WbTargetEvent {
    int32_t type;               /* WbTargetEventType */
    int32_t hitLength;          /* 1: stopped at max tokens */
    double ttftMs;              /* < 0: no token arrived */
    double e2eMs;
    const double* interTokenMs; /* gaps between successive tokens (or streamed chunks) */
    size_t numInterToken;
    int64_t promptTokens;       /* the server's own count (usage.prompt_tokens); < 0: not reported */
    int64_t completionTokens;
    const char* error;          /* UTF-8, NULL unless type is ERROR */
} WbTargetEvent;

/* An encoded image (PNG or JPEG) sent with a request. */
typedef struct WbTargetImage {
    const uint8_t* data;
    size_t size;
} WbTargetImage;

/* Called once per request, from any thread the plugin chooses. */
typedef void (*WbTargetEventFn)(void* user, const WbTargetEvent* event);

typedef struct WbTargetPlugin {
    uint32_t apiVersion; /* WB_TARGET_PLUGIN_API_VERSION */
    uint32_t structSize; /* sizeof(WbTargetPlugin) as the plugin saw it */
    const char* metadataJson;

    /* Opens a target from a JSON config {"url","model","api_key","endpoint":"completions"|"chat",
     * "ignore_eos":bool}. Checks that the server answers; on failure returns NULL and sets *error. */
    void* (*open)(const char* configJson, char** error);
    /* Waits for the target's requests still running, then frees it. */
    void (*close)(void* target);
    /* The model id the target sends (the server's first listed model when none was given). */
    char* (*modelName)(void* target);
    /* Starts one request of maxTokens output tokens for the prompt's token ids; fn gets its one event. */
    void (*start)(void* target, const int32_t* promptTokens, size_t numPromptTokens, int64_t maxTokens,
                  WbTargetEventFn fn, void* user);
    /* GET the flavour's health probe: 1 healthy, 0 not (with *detail saying why; may be NULL). */
    int32_t (*health)(void* target, char** detail);
    /* What the server reports now, as JSON: {"memory_bytes":N|null,"memory_source":"...","kv_usage":0..1|null,
     * "kv_source":"..."}. null where the server does not report it: a plugin never estimates. */
    char* (*sampleMetrics)(void* target);
    void (*freeString)(char* s);

    /* Optional (appended; see above). As start, with images before the prompt, as one chat message (the images
     * as image_url data URLs, then the prompt as text): multimodal workloads. The plugin copies what it keeps. */
    void (*startImages)(void* target, const int32_t* promptTokens, size_t numPromptTokens, const WbTargetImage* images,
                        size_t numImages, int64_t maxTokens, WbTargetEventFn fn, void* user);

    /* Version 2 (required of a version-2 plugin). One request carrying the workload's real chat, as JSON:
     *   {"messages": [...], "max_tokens": N, "prompt_token_ids": [...]}
     * "messages" is the OpenAI chat layout: each {"role", "content"} with content a string or a list of
     * {"type":"text","text"} and {"type":"image_url","image_url":{"url":"data:image/png;base64,..."}} parts (the
     * images inline, so nothing refers to host memory); "prompt_token_ids" is what the host tokenized the text
     * parts to, for reference only. The plugin sends the messages to its chat endpoint as they are. */
    void (*startChat)(void* target, const char* requestJson, WbTargetEventFn fn, void* user);
} WbTargetPlugin;

/* Version 1's table: version 2's without startChat (the name a version-1 plugin's source uses). */
typedef WbTargetPlugin WbTargetPluginV1;

/* The table's size before its optional functions: what every version-1 plugin has. */
#define WB_TARGET_PLUGIN_V1_BASE_SIZE (offsetof(WbTargetPlugin, startImages))
/* What every version-2 plugin has. */
#define WB_TARGET_PLUGIN_V2_SIZE (offsetof(WbTargetPlugin, startChat) + sizeof(void (*)(void)))

/* The two exported symbols. */
typedef uint32_t (*WbTargetPluginApiVersionFn)(void);
typedef const WbTargetPlugin* (*WbTargetPluginEntryFn)(void);
#define WB_TARGET_PLUGIN_API_VERSION_SYMBOL "wbTargetPluginApiVersion"
#define WB_TARGET_PLUGIN_ENTRY_SYMBOL "wbTargetPluginEntry"

#ifdef __cplusplus
}
#endif

#endif /* WB_TARGET_PLUGIN_API_H */
