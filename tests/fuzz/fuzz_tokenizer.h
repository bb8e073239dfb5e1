// What the app does with a tokenizer once it loaded (wb tokenize, the chat prompt, streaming detokenization):
// every id's bytes and piece, encodes with and without special-token parsing, decodes of valid and invalid ids.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string_view>

#include "api/tokenizer.h"

namespace wbfuzz {

inline void exerciseTokenizer(const wb::Tokenizer& tok, std::string_view extraText = {}) {
    const int32_t n = std::min<int32_t>(tok.vocabSize(), 2048);
    for (int32_t id = -1; id <= n; ++id) {
        (void)tok.tokenBytes(id, true);
        (void)tok.tokenBytes(id, false);
        (void)tok.piece(id);
        (void)tok.isControl(id);
    }
    static constexpr std::string_view kTexts[] = {"Once upon a time, there was a little girl.", "", " \n\n\t x",
                                                  "<s></s><unk><|im_start|>user\nhi<|im_end|>",
                                                  "\xff\xfe invalid \xc3", "日本語 😀 café <0x0A>▁▁"};
    for (int i = 0; i <= int(std::size(kTexts)); ++i) {
        const std::string_view t = i < int(std::size(kTexts)) ? kTexts[i] : extraText.substr(0, 256);
        for (auto sp : {wb::SpecialTokens::Parse, wb::SpecialTokens::Plain}) {
            auto ids = tok.encode(t, true, sp);
            (void)tok.decode(ids, true);
            (void)tok.decode(ids, false);
        }
    }
    (void)tok.encodeSegments({{"<|im_start|>user\n", wb::SpecialTokens::Parse}, {"hi </s> there", wb::SpecialTokens::Plain},
                              {"<|im_end|>", wb::SpecialTokens::Parse}},
                             true);
    (void)tok.decode({-5, 0, 1, tok.vocabSize(), tok.vocabSize() + 1000, std::numeric_limits<int32_t>::max()}, true);
    (void)tok.specialTokenId("</s>");
}

}  // namespace wbfuzz
