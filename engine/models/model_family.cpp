#include "models/model_family.h"

namespace wb {

std::vector<EngineModel::DeviceShare> decoderDeviceShares(const LlamaModel& m) {
    if (m.parallelDegree() == 1 && !m.onGpus()) return {};  // the host: described by the engine
    std::vector<EngineModel::DeviceShare> out;
    const auto names = m.deviceNames();
    const auto weights = m.deviceWeightBytes();
    const auto kv = m.deviceKvBytesPerToken();
    const auto mem = m.deviceMemory();
    const auto ws = m.deviceWorkspaceBytes();
    for (size_t i = 0; i < names.size(); ++i) out.push_back({names[i], weights[i], ws[i], kv[i], mem[i]});
    return out;
}

}  // namespace wb
