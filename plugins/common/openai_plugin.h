// The shared body of every comparison-target plugin: streams requests with wb::HttpTarget and reads the server's
// own health and metrics endpoints the way the plugin's metadata describes ("metrics": {"format", "memory",
// "kv"}). Formats: "prometheus" (series names with an optional scale to bytes / to a 0..1 fraction),
// "trtllm-json" (trtllm-serve's /metrics iteration stats), "ollama-ps" (Ollama's /api/ps), "none".
#pragma once

#include "api/target_plugin_api.h"

namespace wbplugin {

/// The plugin's table; `metadataJson` must outlive it (a static in the plugin).
const WbTargetPlugin* openAiPluginTable(const char* metadataJson);

}  // namespace wbplugin
