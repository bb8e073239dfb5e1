#include "audio/whisper_ggml.h"

#include <cstring>

namespace wb::audio {

const GgmlTensorRecord* WhisperGgmlFile::find(const std::string& name) const {
    for (const auto& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

Result<WhisperGgmlFile> parseWhisperGgml(std::shared_ptr<const std::vector<uint8_t>> bytes, const std::string& what) {
    if (!bytes) return makeError(what + ": no data");
    ByteCursor cur(*bytes, what);
    WhisperGgmlFile f;
    f.path = what;
    auto magic = cur.u32("magic");
    if (!magic) return magic.error();
    if (*magic != kGgmlMagic) return makeError(what + ": not a whisper.cpp ggml model (bad magic)");
    int32_t* fields[] = {&f.hparams.nVocab,      &f.hparams.nAudioCtx, &f.hparams.nAudioState, &f.hparams.nAudioHead,
                         &f.hparams.nAudioLayer, &f.hparams.nTextCtx,  &f.hparams.nTextState,  &f.hparams.nTextHead,
                         &f.hparams.nTextLayer,  &f.hparams.nMels,     &f.hparams.ftype};
    for (int32_t* field : fields) {
        auto v = cur.i32("hyper-parameters");
        if (!v) return v.error();
        *field = *v;
    }
    const auto& hp = f.hparams;
    auto positive = [](int32_t v, int32_t max) { return v > 0 && v <= max; };
    if (!positive(hp.nVocab, 1 << 20) || !positive(hp.nAudioCtx, 1 << 16) || !positive(hp.nAudioState, 1 << 15) ||
        !positive(hp.nAudioHead, 1024) || !positive(hp.nAudioLayer, 1024) || !positive(hp.nTextCtx, 1 << 16) ||
        !positive(hp.nTextState, 1 << 15) || !positive(hp.nTextHead, 1024) || !positive(hp.nTextLayer, 1024) ||
        !positive(hp.nMels, 512) || hp.nAudioState % hp.nAudioHead != 0 || hp.nTextState % hp.nTextHead != 0)
        return makeError(what + ": implausible hyper-parameters");
    auto nMel = cur.i32("mel filters n_mel");
    if (!nMel) return nMel.error();
    auto nFft = cur.i32("mel filters n_fft");
    if (!nFft) return nFft.error();
    if (*nMel != hp.nMels || *nFft < 1 || *nFft > 4097)
        return makeError(what + ": mel filterbank of " + std::to_string(*nMel) + " x " + std::to_string(*nFft) +
                         " for a model of " + std::to_string(hp.nMels) + " mel bins");
    auto filt = cur.bytes(size_t(*nMel) * size_t(*nFft) * 4, "mel filters");
    if (!filt) return filt.error();
    f.filters.nMels = *nMel;
    f.filters.nFreqs = *nFft;
    f.filters.weights.resize(size_t(*nMel) * size_t(*nFft));
    std::memcpy(f.filters.weights.data(), filt->data(), filt->size());
    auto nVocab = cur.i32("vocabulary size");
    if (!nVocab) return nVocab.error();
    if (*nVocab < 0 || *nVocab > hp.nVocab)
        return makeError(what + ": vocabulary of " + std::to_string(*nVocab) + " tokens for n_vocab " +
                         std::to_string(hp.nVocab));
    f.vocab.reserve(size_t(*nVocab));
    for (int32_t i = 0; i < *nVocab; ++i) {
        auto len = cur.u32("token length");
        if (!len) return len.error();
        if (*len > 1024)
            return makeError(what + ": token " + std::to_string(i) + " of " + std::to_string(*len) + " bytes");
        auto tok = cur.string(*len, "token");
        if (!tok) return tok.error();
        f.vocab.push_back(std::move(*tok));
    }
    auto tensors = readGgmlTensorRecords(cur);
    if (!tensors) return tensors.error();
    f.tensors = std::move(*tensors);
    f.bytes = std::move(bytes);
    return f;
}

Result<WhisperGgmlFile> loadWhisperGgml(const std::string& path) {
    auto bytes = readWholeFile(path, size_t(8) << 30);
    if (!bytes) return bytes.error();
    return parseWhisperGgml(std::move(*bytes), path);
}

}  // namespace wb::audio
