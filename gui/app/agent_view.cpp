#include "app/agent_view.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QLocale>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QToolButton>
#include <QVBoxLayout>
#include <QtConcurrent>

#include "api/agent.h"

namespace wbgui {

namespace {

QString ms(double v) {
    if (v < 0) return QStringLiteral("—");
    return v >= 1000 ? QStringLiteral("%1 s").arg(v / 1000.0, 0, 'f', 2) : QStringLiteral("%1 ms").arg(qRound(v));
}

QString q(const std::string& s) { return QString::fromStdString(s); }

QString actionSummary(const wb::AgentParse& p) {
    if (!p.ok()) return QObject::tr("parse error: %1").arg(q(p.error));
    const wb::AgentAction& a = p.action;
    QString s = q(a.name);
    if (a.point) s += QStringLiteral(" [%1, %2]").arg(a.point->x).arg(a.point->y);
    if (a.start && a.end)
        s += QStringLiteral(" [%1, %2] → [%3, %4]").arg(a.start->x).arg(a.start->y).arg(a.end->x).arg(a.end->y);
    if (!a.text.empty()) s += QStringLiteral(" “%1”").arg(q(a.text));
    if (!a.app.empty()) s += QStringLiteral(" %1").arg(q(a.app));
    if (!a.message.empty()) s += QStringLiteral(" — %1").arg(q(a.message));
    return s;
}

}  // namespace

AgentRunView loadAgentRun(const QString& dir) {
    AgentRunView v;
    v.dir = dir;
    auto r = wb::readAgentTrace(dir.toStdString());
    if (!r) {
        v.error = q(r.error().message);
        return v;
    }
    v.task = q(r->task);
    v.target = q(r->target);
    v.source = q(r->source);
    v.status = r->statusDetail.empty() ? q(r->status) : q(r->status) + QStringLiteral(": ") + q(r->statusDetail);
    const QLocale locale = QLocale::c();
    for (const wb::AgentStep& st : r->steps) {
        AgentStepView s;
        s.index = st.index;
        s.parsed = st.parse.ok();
        s.action = actionSummary(st.parse);
        s.title = QStringLiteral("%1. %2").arg(st.index).arg(s.parsed ? q(st.parse.action.name) : QObject::tr("(no action)"));
        s.reasoning = q(st.reply.reasoning);
        s.answer = st.reply.error.empty() ? q(st.reply.answer) : QObject::tr("request failed: %1").arg(q(st.reply.error));
        s.timings = QObject::tr("TTFT %1 · thinking ends %2 · total %3 · %4 + %5 tokens")
                            .arg(ms(st.reply.ttftMs), ms(st.reply.thinkEndMs), ms(st.reply.totalMs),
                                 locale.toString(qlonglong(st.reply.promptTokens)),
                                 locale.toString(qlonglong(st.reply.completionTokens)));
        for (const wb::AgentMark& m : st.marks)
            s.marks << QStringLiteral("%1 at %2,%3%4 %5")
                               .arg(QString::fromLatin1(wb::agentMarkShapeName(m.shape)))
                               .arg(m.x)
                               .arg(m.y)
                               .arg(m.shape == wb::AgentMark::Shape::Arrow ? QStringLiteral(" → %1,%2").arg(m.x2).arg(m.y2)
                                                                           : QString())
                               .arg(q(m.label));
        if (st.screen.bytes) {
            auto png = wb::annotateAgentScreenshot(*st.screen.bytes, st.marks);
            const std::vector<uint8_t>& bytes = png ? *png : *st.screen.bytes;
            s.annotated = QImage::fromData(bytes.data(), int(bytes.size()));
        }
        v.steps << s;
    }
    return v;
}

AgentView::AgentView(QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("agentView"));
    m_open = new QPushButton(tr("Open run…"));
    m_open->setObjectName(QStringLiteral("agentOpen"));
    m_prev = new QPushButton(tr("◀ Previous"));
    m_prev->setObjectName(QStringLiteral("agentPrev"));
    m_next = new QPushButton(tr("Next ▶"));
    m_next->setObjectName(QStringLiteral("agentNext"));
    m_header = new QLabel(tr("A phone-agent run folder (written by `wb agent --out RUN`) opens here."));
    m_header->setObjectName(QStringLiteral("agentHeader"));
    m_header->setWordWrap(true);
    m_header->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_timeline = new QListWidget;
    m_timeline->setObjectName(QStringLiteral("agentTimeline"));
    m_timeline->setMaximumWidth(240);
    m_image = new QLabel;
    m_image->setObjectName(QStringLiteral("agentImage"));
    m_image->setAlignment(Qt::AlignCenter);
    m_image->setMinimumSize(160, 240);
    m_action = new QLabel;
    m_action->setObjectName(QStringLiteral("agentAction"));
    m_action->setWordWrap(true);
    m_action->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_timings = new QLabel;
    m_timings->setObjectName(QStringLiteral("agentTimings"));
    m_timings->setWordWrap(true);
    m_thinkingToggle = new QToolButton;
    m_thinkingToggle->setText(tr("Thinking"));
    m_thinkingToggle->setCheckable(true);
    m_thinkingToggle->setChecked(true);
    m_thinkingToggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    m_thinkingToggle->setArrowType(Qt::DownArrow);
    m_thinking = new QPlainTextEdit;
    m_thinking->setObjectName(QStringLiteral("agentThinking"));
    m_thinking->setReadOnly(true);
    m_answer = new QPlainTextEdit;
    m_answer->setObjectName(QStringLiteral("agentAnswer"));
    m_answer->setReadOnly(true);
    m_answer->setMaximumHeight(90);

    // Word-wrapped labels in a layout get one line's height before they know their width: keep room for two.
    const int twoLines = 2 * fontMetrics().lineSpacing() + 4;
    m_header->setMinimumHeight(twoLines);
    m_timings->setMinimumHeight(twoLines);
    m_action->setMinimumHeight(twoLines);
    auto* details = new QWidget;
    auto* dl = new QVBoxLayout(details);
    dl->addWidget(m_action);
    dl->addWidget(m_timings);
    dl->addWidget(m_thinkingToggle);
    dl->addWidget(m_thinking, 1);
    dl->addWidget(new QLabel(tr("Answer")));
    dl->addWidget(m_answer);
    auto* split = new QSplitter;
    split->addWidget(m_timeline);
    split->addWidget(m_image);
    split->addWidget(details);
    split->setStretchFactor(1, 2);
    split->setStretchFactor(2, 1);

    auto* top = new QHBoxLayout;
    top->addWidget(m_open);
    top->addWidget(m_prev);
    top->addWidget(m_next);
    top->addStretch(1);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(m_header);
    layout->addWidget(split, 1);

    connect(m_open, &QPushButton::clicked, this, &AgentView::chooseRun);
    connect(m_prev, &QPushButton::clicked, this, [this] { showStep(currentStep() - 1); });
    connect(m_next, &QPushButton::clicked, this, [this] { showStep(currentStep() + 1); });
    connect(m_timeline, &QListWidget::currentRowChanged, this, [this](int row) { showStep(row); });
    connect(m_thinkingToggle, &QToolButton::toggled, this, [this](bool on) {
        m_thinking->setVisible(on);
        m_thinkingToggle->setArrowType(on ? Qt::DownArrow : Qt::RightArrow);
    });
    connect(&m_watcher, &QFutureWatcher<AgentRunView>::finished, this, &AgentView::loaded);
    showStep(-1);
}

void AgentView::chooseRun() {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open an agent run folder"));
    if (!dir.isEmpty()) openRun(dir);
}

void AgentView::openRun(const QString& dir) {
    if (m_watcher.isRunning()) return;  // one read at a time; the button is disabled meanwhile anyway
    m_open->setEnabled(false);
    m_header->setText(tr("Reading %1…").arg(dir));
    m_watcher.setFuture(QtConcurrent::run(loadAgentRun, dir));
}

void AgentView::loaded() {
    m_open->setEnabled(true);
    m_run = m_watcher.result();
    m_timeline->blockSignals(true);
    m_timeline->clear();
    for (const AgentStepView& s : m_run.steps) {
        auto* item = new QListWidgetItem(s.title);
        if (!s.parsed) item->setForeground(Qt::darkRed);
        m_timeline->addItem(item);
    }
    m_timeline->blockSignals(false);
    if (!m_run.error.isEmpty()) {
        m_header->setText(tr("Cannot open the run: %1").arg(m_run.error));
        showStep(-1);
        emit runLoaded(false);
        return;
    }
    m_header->setText(tr("<b>%1</b><br>%2 · %3 · %4 steps · %5")
                              .arg(m_run.task.toHtmlEscaped(), m_run.target.toHtmlEscaped(),
                                   m_run.source.toHtmlEscaped())
                              .arg(m_run.steps.size())
                              .arg(m_run.status.toHtmlEscaped()));
    showStep(m_run.steps.isEmpty() ? -1 : 0);
    emit runLoaded(true);
}

int AgentView::currentStep() const { return m_timeline->currentRow(); }

void AgentView::showStep(int index) {
    const bool valid = index >= 0 && index < m_run.steps.size();
    if (valid && m_timeline->currentRow() != index) {
        m_timeline->setCurrentRow(index);  // comes back here through currentRowChanged
        return;
    }
    m_prev->setEnabled(valid && index > 0);
    m_next->setEnabled(valid && index + 1 < m_run.steps.size());
    if (!valid) {
        m_image->clear();
        m_action->clear();
        m_timings->clear();
        m_thinking->clear();
        m_answer->clear();
        return;
    }
    const AgentStepView& s = m_run.steps[index];
    m_action->setText((s.parsed ? tr("Action: %1") : tr("%1")).arg(s.action));
    m_action->setToolTip(s.marks.join('\n'));
    m_timings->setText(s.timings);
    m_thinking->setPlainText(s.reasoning);
    m_answer->setPlainText(s.answer);
    updateImage();
}

void AgentView::updateImage() {
    const int i = currentStep();
    if (i < 0 || i >= m_run.steps.size() || m_run.steps[i].annotated.isNull()) {
        m_image->clear();
        return;
    }
    m_image->setPixmap(QPixmap::fromImage(m_run.steps[i].annotated)
                               .scaled(m_image->size(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
}

void AgentView::resizeEvent(QResizeEvent* e) {
    QWidget::resizeEvent(e);
    updateImage();
}

}  // namespace wbgui
