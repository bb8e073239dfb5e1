// The split-K sizing rule of the CUDA paged attention (backend/attention_split.h), held on the CPU: every token's
// context is covered, the workspace of any step is bounded whatever the context, and the step that broke the old
// rule (a 512-token step beside one 128k-token sequence on GLM-4-9B's shapes) fits a stated bound.
#include <QtTest>

#include "backend/attention_split.h"

namespace {

// GLM-4-9B: 32 query heads of 128 (over 2 KV heads), a 131,072-token context; one rank holds all 32 heads.
constexpr int64_t kGlmHeads = 32, kGlmHeadDim = 128, kGlmContext = 131072;

// The rule before: every token of the step split into ceil(longest context / 512) partitions.
int64_t oldRuleBytes(int64_t numTokens, int64_t numHeads, int64_t headDim, int64_t maxContext) {
    const int64_t parts = (maxContext + 511) / 512;
    return parts <= 1 ? 0 : numTokens * numHeads * parts * (headDim + 2) * 4;
}

}  // namespace

class TestAttentionSplit : public QObject {
    Q_OBJECT

private slots:
    void partitionsCoverEveryContext() {
        for (int64_t tokens : {1, 2, 7, 64, 511, 512, 1024, 4096})
            for (int64_t ctx : {1, 100, 511, 512, 513, 4096, 32769, 131072}) {
                const wb::AttentionSplit s = wb::attentionSplit(tokens, ctx);
                QVERIFY(s.partitions >= 1);
                // Covered, and the longest token's last partition is not empty.
                QVERIFY2(s.partitions * s.positionsPerPartition >= ctx,
                         qPrintable(QString("%1 %2").arg(tokens).arg(ctx)));
                QVERIFY((s.partitions - 1) * s.positionsPerPartition < ctx);
                if (s.partitions > 1) {
                    QVERIFY(tokens * s.partitions <= wb::kAttentionMaxSplitRows);
                    QVERIFY(s.positionsPerPartition >= wb::kAttentionMinPartitionPositions);
                }
            }
    }

    void decodeSplitsLongContextsAsBefore() {
        // One decode token: the parallelism the split is for is kept (partitions of 512 positions).
        QCOMPARE(wb::attentionSplit(1, 131072).partitions, int64_t(256));
        QCOMPARE(wb::attentionSplit(1, 131072).positionsPerPartition, int64_t(512));
        QCOMPARE(wb::attentionSplit(1, 512).partitions, int64_t(1));
        QCOMPARE(wb::attentionWorkspaceBytes(1, kGlmHeads, kGlmHeadDim, 512), int64_t(0));
        // 64 decodes at 128k: 16 partitions of 8,192 positions each.
        QCOMPARE(wb::attentionSplit(64, 131072).partitions, int64_t(16));
        QCOMPARE(wb::attentionSplit(64, 131072).positionsPerPartition, int64_t(8192));
    }

    void glm9bPrefillBesideLongDecodeFits() {
        // The step of the issue: 512 tokens, one of them a decode at position 131,071.
        const int64_t got = wb::attentionWorkspaceBytes(512, kGlmHeads, kGlmHeadDim, kGlmContext);
        const int64_t bound = kGlmHeads * wb::kAttentionMaxSplitRows * (kGlmHeadDim + 2) * 4;  // 17,039,360 bytes
        QCOMPARE(bound, int64_t(17039360));
        QVERIFY(got <= bound);
        QCOMPARE(got, int64_t(512) * kGlmHeads * 2 * (kGlmHeadDim + 2) * 4);  // 2 partitions of 65,536
        // The old rule asked 2.18 GB for the same step (3.3 GB after its 1.5x growth).
        QCOMPARE(oldRuleBytes(512, kGlmHeads, kGlmHeadDim, kGlmContext), int64_t(2181038080));
        qInfo("512-token step beside a 128k sequence, GLM-4-9B: %lld bytes (old rule %lld)", (long long)got,
              (long long)oldRuleBytes(512, kGlmHeads, kGlmHeadDim, kGlmContext));
    }

    void boundCoversEveryStepSize() {
        // What a model reserves at load: the most any step of 1..maxTokens tokens asks, independent of context.
        const int64_t bound = wb::attentionWorkspaceBound(512, kGlmHeads, kGlmHeadDim, kGlmContext);
        QVERIFY(bound <= kGlmHeads * wb::kAttentionMaxSplitRows * (kGlmHeadDim + 2) * 4);
        for (int64_t n = 1; n <= 512; ++n)
            for (int64_t ctx : {int64_t(1000), int64_t(8192), int64_t(65537), kGlmContext})
                QVERIFY(wb::attentionWorkspaceBytes(n, kGlmHeads, kGlmHeadDim, ctx) <= bound);
        // A short context needs no split, hence no workspace.
        QCOMPARE(wb::attentionWorkspaceBound(512, kGlmHeads, kGlmHeadDim, 512), int64_t(0));
        // Steps above kAttentionMaxSplitRows tokens never split.
        QCOMPARE(wb::attentionWorkspaceBytes(2048, kGlmHeads, kGlmHeadDim, kGlmContext), int64_t(0));
    }
};

QTEST_APPLESS_MAIN(TestAttentionSplit)
#include "tst_attention_split.moc"
