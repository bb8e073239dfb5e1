// Model cards and memory plans from headers only (wb::summarizeModel), and the library scan that finds models
// in folders. Pure functions: safe to call from any thread, which is where the scan runs.
#pragma once

#include <QStringList>

#include "bridge/bridge_types.h"

namespace wbgui {

/// Reads a model's headers; on failure the card's error names the file and the cause.
ModelCard readModelCard(const QString& path);

/// Weights at `precision` + KV cache for `numSequences` × `contextLength` tokens + the step workspace.
MemoryPlan planMemory(const ModelCard& card, const QString& precision, qint64 contextLength, int numSequences,
                      qint64 availableBytes);

/// The context length a load starts from, and why: the model's own deployments' setting where there is one
/// (GLM-4.1V / AutoGLM-Phone-9B: 25,480 tokens, vLLM's --max-model-len in the model's README), else the model's
/// context; lowered (halving, down to 2,048) until the plan fits `availableBytes` at `precision`.
struct ContextChoice {
    qint64 tokens = 0;
    QString why;
};
ContextChoice suggestContextLength(const ModelCard& card, const QString& precision, int numSequences,
                                   qint64 availableBytes);

/// MemAvailable from /proc/meminfo (what the engine itself sizes against).
qint64 availableMemoryBytes();
/// This process's resident set.
qint64 processRssBytes();

/// Model paths under each entry: a .gguf file, a folder holding config.json + *.safetensors, or a folder
/// searched (a few levels deep) for either. Sorted, unique.
QStringList scanForModels(const QStringList& libraryEntries);

/// The precisions a load may ask for, in the engine's spelling.
QStringList precisionNames();

}  // namespace wbgui
