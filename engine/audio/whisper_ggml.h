// whisper.cpp's model file (ggml-tiny.bin, ggml-base.en.bin, ...): magic, eleven int32 hyper-parameters, the mel
// filterbank it was converted with, the vocabulary (GPT-2 byte-level tokens as raw bytes), then the tensors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "audio/ggml_legacy.h"
#include "audio/log_mel.h"
#include "core/result.h"

namespace wb::audio {

struct WhisperHparams {
    int32_t nVocab = 0, nAudioCtx = 0, nAudioState = 0, nAudioHead = 0, nAudioLayer = 0;
    int32_t nTextCtx = 0, nTextState = 0, nTextHead = 0, nTextLayer = 0, nMels = 0, ftype = 0;
};

struct WhisperGgmlFile {
    std::string path;
    WhisperHparams hparams;
    MelFilterbank filters;
    std::vector<std::string> vocab;  // the file's tokens, index = id (special tokens are not stored)
    std::vector<GgmlTensorRecord> tensors;
    std::shared_ptr<const std::vector<uint8_t>> bytes;

    const GgmlTensorRecord* find(const std::string& name) const;
};

/// Parses a whisper.cpp model held in memory. `what` names it in errors.
Result<WhisperGgmlFile> parseWhisperGgml(std::shared_ptr<const std::vector<uint8_t>> bytes, const std::string& what);

Result<WhisperGgmlFile> loadWhisperGgml(const std::string& path);

}  // namespace wb::audio
