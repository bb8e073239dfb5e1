#include "app/chat_view.h"

#include <QSaveFile>
#include <QtConcurrent/QtConcurrentRun>

#include <QPointer>

#include <QImageReader>

#include <QFutureWatcher>

#include <QAbstractTextDocumentLayout>
#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QTextBlock>
#include <QTextCursor>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QListWidget>
#include <QMimeData>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QShortcut>
#include <QSpinBox>
#include <QSplitter>
#include <QToolButton>
#include <QVBoxLayout>

#include "app/image_viewer.h"
#include "app/theme.h"
#include "app/input_panel.h"
#include "bridge/engine_bridge.h"

namespace wbgui {

// ---------------------------------------------------------------------------------------------------------------

MarkdownView::MarkdownView(QWidget* parent) : QTextBrowser(parent) {
    setOpenExternalLinks(true);
    setFrameShape(QFrame::NoFrame);
    setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    viewport()->setAutoFillBackground(false);
    document()->setDocumentMargin(2);
    connect(document()->documentLayout(), &QAbstractTextDocumentLayout::documentSizeChanged, this,
            &MarkdownView::fitHeight);
    fitHeight();
}

void MarkdownView::setMarkdownText(const QString& md) {
    if (md == m_text) return;
    m_text = md;
    setMarkdown(md);
    monospaceCode();
}

// Qt's Markdown reader marks `code` and code blocks as fixed pitch, which Debian's default fonts ignore: give
// those fragments the system's fixed font.
void MarkdownView::monospaceCode() {
    const QString mono = QFontDatabase::systemFont(QFontDatabase::FixedFont).family();
    QTextCursor c(document());
    for (QTextBlock b = document()->begin(); b.isValid(); b = b.next()) {
        const bool codeBlock = b.blockFormat().hasProperty(QTextFormat::BlockCodeFence) ||
                               b.blockFormat().nonBreakableLines();
        for (auto it = b.begin(); !it.atEnd(); ++it) {
            const QTextFragment f = it.fragment();
            if (!f.isValid() || !(codeBlock || f.charFormat().fontFixedPitch())) continue;
            c.setPosition(f.position());
            c.setPosition(f.position() + f.length(), QTextCursor::KeepAnchor);
            QTextCharFormat fmt;
            fmt.setFontFamilies({mono});
            c.mergeCharFormat(fmt);
        }
    }
}

void MarkdownView::fitHeight() {
    const int h = int(std::ceil(document()->size().height())) + 2 * frameWidth();
    setFixedHeight(qMax(h, fontMetrics().height() + 6));
}

// ---------------------------------------------------------------------------------------------------------------

MessageWidget::MessageWidget(const StoredMessage& message, QWidget* parent) : QFrame(parent), m_message(message) {
    const bool user = message.role == QLatin1String("user");
    setObjectName(user ? QStringLiteral("userMessage") : QStringLiteral("assistantMessage"));
    setFrameShape(QFrame::StyledPanel);
    auto* role = new QLabel(user ? tr("<b>You</b>") : tr("<b>Assistant</b>"));
    auto* copy = new QToolButton;
    copy->setText(tr("Copy"));
    copy->setObjectName(QStringLiteral("copyButton"));
    auto* edit = new QToolButton;
    edit->setText(tr("Edit"));
    edit->setObjectName(QStringLiteral("editButton"));
    edit->setVisible(user);
    m_regenerate = new QToolButton;
    m_regenerate->setText(tr("Regenerate"));
    m_regenerate->setObjectName(QStringLiteral("regenerateButton"));
    m_regenerate->setVisible(false);
    auto* header = new QHBoxLayout;
    header->addWidget(role);
    header->addStretch();
    header->addWidget(edit);
    header->addWidget(m_regenerate);
    header->addWidget(copy);

    m_attachments = new QLabel;
    m_attachments->setWordWrap(true);
    m_thinkingToggle = new QToolButton;
    m_thinkingToggle->setObjectName(QStringLiteral("thinkingToggle"));
    m_thinkingToggle->setCheckable(true);
    m_thinkingToggle->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    m_thinkingToggle->setArrowType(Qt::RightArrow);
    m_thinkingToggle->setText(tr("Thinking"));
    m_thinkingToggle->setAutoRaise(true);
    m_thinking = new MarkdownView;
    m_thinking->setObjectName(QStringLiteral("thinking"));
    m_thinking->setStyleSheet(QStringLiteral("font-style: italic;"));
    m_thinking->hide();
    m_answer = new MarkdownView;
    m_answer->setObjectName(QStringLiteral("answer"));
    m_stats = new QLabel;
    m_stats->setObjectName(QStringLiteral("statsLine"));
    applyColors();

    auto* layout = new QVBoxLayout(this);
    layout->setSpacing(2);
    layout->addLayout(header);
    layout->addWidget(m_attachments);
    // Image attachments as thumbnails, read and scaled off the GUI thread (screenshots are megabytes).
    auto* thumbs = new QHBoxLayout;
    thumbs->setSpacing(6);
    int numThumbs = 0;
    for (const QString& path : m_message.attachments) {
        if (InputPanel::isAudioPath(path)) continue;
        auto* label = new QLabel(tr("(loading %1)").arg(QFileInfo(path).fileName()));
        label->setObjectName(QStringLiteral("attachmentThumbnail"));
        label->setToolTip(tr("%1\nClick to view it full size").arg(path));
        label->setProperty("imagePath", path);
        label->setCursor(Qt::PointingHandCursor);
        label->installEventFilter(this);
        label->setStyleSheet(QStringLiteral("border: 1px solid %1; color: %2;")
                                     .arg(theme::css(theme::border()), theme::css(theme::mutedText())));
        thumbs->addWidget(label);
        ++numThumbs;
        QPointer<QLabel> guard(label);
        auto* watcher = new QFutureWatcher<QImage>(label);
        connect(watcher, &QFutureWatcher<QImage>::finished, label, [guard, watcher, path] {
            if (!guard) return;
            const QImage img = watcher->result();
            if (img.isNull())
                guard->setText(tr("(cannot read %1)").arg(QFileInfo(path).fileName()));
            else
                guard->setPixmap(QPixmap::fromImage(img));
        });
        watcher->setFuture(QtConcurrent::run([path] {
            QImageReader reader(path);
            reader.setAutoTransform(true);  // upright, as the engine sees it (EXIF orientation)
            const QSize size = reader.size();
            if (size.isValid() && size.height() > 0)
                reader.setScaledSize(size.scaled(QSize(240, 160), Qt::KeepAspectRatio));
            return reader.read();
        }));
    }
    thumbs->addStretch();
    if (numThumbs > 0) layout->addLayout(thumbs);
    layout->addWidget(m_thinkingToggle);
    layout->addWidget(m_thinking);
    layout->addWidget(m_answer);
    layout->addWidget(m_stats);

    connect(m_thinkingToggle, &QToolButton::toggled, this, &MessageWidget::setThinkingExpanded);
    connect(copy, &QToolButton::clicked, this, [this] { Q_EMIT copyRequested(m_message.content); });
    connect(edit, &QToolButton::clicked, this, [this] { Q_EMIT editRequested(m_message.id); });
    connect(m_regenerate, &QToolButton::clicked, this, &MessageWidget::regenerateRequested);
    render();
}

void MessageWidget::render() {
    QStringList names;
    // An icon, not the 📎 glyph (Debian's default fonts draw it as a box).
    for (const QString& a : m_message.attachments)
        names.append(QStringLiteral("<img src=':/icons/attachment.svg' width='12' height='12'> ") +
                     QFileInfo(a).fileName().toHtmlEscaped());
    m_attachments->setTextFormat(Qt::RichText);
    m_attachments->setText(names.join(QStringLiteral("&nbsp;&nbsp;")));
    m_attachments->setVisible(!names.isEmpty());
    m_thinkingToggle->setVisible(!m_message.reasoning.isEmpty());
    m_thinking->setMarkdownText(m_message.reasoning);
    m_answer->setMarkdownText(m_message.content);
    m_stats->setText(m_message.statsLine.isEmpty() ? m_status : m_message.statsLine);
    m_stats->setVisible(!m_stats->text().isEmpty());
}

void MessageWidget::setStatus(const QString& status) {
    if (status == m_status) return;
    m_status = status;
    if (m_message.statsLine.isEmpty()) {
        m_stats->setText(m_status);
        m_stats->setVisible(!m_status.isEmpty());
    }
}

void MessageWidget::applyColors() {
    const bool user = m_message.role == QLatin1String("user");
    // Only when different: setting a style sheet changes the palette, which calls this again.
    const QString sheet = QStringLiteral("#%1 { background: %2; border-radius: 6px; }")
                                  .arg(objectName(), theme::css(user ? theme::userBubble() : theme::assistantBubble()));
    if (styleSheet() != sheet) setStyleSheet(sheet);
    const QString stats = QStringLiteral("color: %1; font-size: small;").arg(theme::css(theme::mutedText()));
    if (m_stats->styleSheet() != stats) m_stats->setStyleSheet(stats);
    if (m_thinking->palette().color(QPalette::Text) != theme::mutedText()) {
        QPalette tp = m_thinking->palette();
        tp.setColor(QPalette::Text, theme::mutedText());
        m_thinking->setPalette(tp);
    }
}

void MessageWidget::changeEvent(QEvent* event) {
    if (event->type() == QEvent::ApplicationPaletteChange || event->type() == QEvent::PaletteChange)
        applyColors();  // light <-> dark
    QFrame::changeEvent(event);
}

QWidget* MessageWidget::openImage(int index) {
    const auto labels = findChildren<QLabel*>(QStringLiteral("attachmentThumbnail"));
    if (index < 0 || index >= labels.size()) return nullptr;
    return ImageViewer::open(labels[index]->property("imagePath").toString(), this);
}

bool MessageWidget::eventFilter(QObject* watched, QEvent* event) {
    if (event->type() == QEvent::MouseButtonRelease) {
        const QString path = watched->property("imagePath").toString();
        if (!path.isEmpty()) {
            ImageViewer::open(path, this);
            return true;
        }
    }
    return QFrame::eventFilter(watched, event);
}

QString MessageWidget::statusText() const { return m_message.statsLine.isEmpty() ? m_status : QString(); }

void MessageWidget::setRegenerateVisible(bool visible) { m_regenerate->setVisible(visible); }
bool MessageWidget::thinkingExpanded() const { return m_thinkingToggle->isChecked(); }

void MessageWidget::setThinkingExpanded(bool expanded) {
    QSignalBlocker b(m_thinkingToggle);
    m_thinkingToggle->setChecked(expanded);
    m_thinkingToggle->setArrowType(expanded ? Qt::DownArrow : Qt::RightArrow);
    m_thinking->setVisible(expanded);
}

// ---------------------------------------------------------------------------------------------------------------

void Composer::keyPressEvent(QKeyEvent* e) {
    if ((e->key() == Qt::Key_Return || e->key() == Qt::Key_Enter) && !(e->modifiers() & Qt::ShiftModifier)) {
        Q_EMIT submitted();
        return;
    }
    QPlainTextEdit::keyPressEvent(e);
}

bool Composer::canInsertFromMimeData(const QMimeData* source) const {
    return (inputPanel && inputPanel->canAccept(source)) || QPlainTextEdit::canInsertFromMimeData(source);
}

void Composer::insertFromMimeData(const QMimeData* source) {
    // Image and audio files dropped on the prompt box are attachments, not their paths as text; audio is then
    // transcribed into the prompt (InputPanel::dropMime, setting voice/transcribeOnDrop).
    if (inputPanel && source->hasUrls() && inputPanel->canAccept(source)) {
        inputPanel->dropMime(source);
        return;
    }
    if (inputPanel && source->hasImage()) {
        if (inputPanel->acceptsImages()) inputPanel->addImage(qvariant_cast<QImage>(source->imageData()));
        return;
    }
    QPlainTextEdit::insertFromMimeData(source);
}

// ---------------------------------------------------------------------------------------------------------------

ChatView::ChatView(EngineBridge* bridge, ChatStore* store, const QString& dataDir, QWidget* parent)
    : QWidget(parent), m_bridge(bridge), m_store(store) {
    setObjectName(QStringLiteral("chatView"));
    // Chats.
    m_chatList = new QListWidget;
    m_chatList->setObjectName(QStringLiteral("chatList"));
    auto* newButton = new QPushButton(tr("New chat"));
    auto* deleteButton = new QPushButton(tr("Delete"));
    auto* exportMd = new QPushButton(tr("Export .md"));
    auto* exportJson = new QPushButton(tr("Export .json"));
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addWidget(m_chatList, 1);
    auto* row1 = new QHBoxLayout;
    row1->addWidget(newButton);
    row1->addWidget(deleteButton);
    auto* row2 = new QHBoxLayout;
    row2->addWidget(exportMd);
    row2->addWidget(exportJson);
    leftLayout->addLayout(row1);
    leftLayout->addLayout(row2);

    // Transcript, attachments, composer.
    m_messagesHost = new QWidget;
    m_messagesLayout = new QVBoxLayout(m_messagesHost);
    m_messagesLayout->addStretch();
    m_scroll = new QScrollArea;
    m_scroll->setObjectName(QStringLiteral("transcript"));
    m_scroll->setWidgetResizable(true);
    m_scroll->setWidget(m_messagesHost);
    m_jump = new QPushButton(tr("Jump to latest ↓"));
    m_jump->setObjectName(QStringLiteral("jumpToLatest"));
    m_jump->setToolTip(tr("Scroll to the newest message and follow the answer again"));
    m_jump->hide();
    // Editing: a banner above the composer says so and offers Cancel (Esc too).
    m_editBanner = new QWidget;
    m_editBanner->setObjectName(QStringLiteral("editBanner"));
    m_editLabel = new QLabel;
    m_editLabel->setWordWrap(true);
    auto* cancelEditButton = new QPushButton(tr("Cancel edit"));
    cancelEditButton->setObjectName(QStringLiteral("cancelEdit"));
    auto* editRow = new QHBoxLayout(m_editBanner);
    editRow->setContentsMargins(0, 0, 0, 0);
    editRow->addWidget(m_editLabel, 1);
    editRow->addWidget(cancelEditButton);
    m_editBanner->hide();
    connect(cancelEditButton, &QPushButton::clicked, this, &ChatView::cancelEdit);
    // A deleted chat can be brought back until the next delete or the app closes.
    m_undoBar = new QWidget;
    m_undoBar->setObjectName(QStringLiteral("undoDeleteBar"));
    m_undoLabel = new QLabel;
    auto* undoButton = new QPushButton(tr("Undo"));
    undoButton->setObjectName(QStringLiteral("undoDelete"));
    auto* undoRow = new QHBoxLayout(m_undoBar);
    undoRow->setContentsMargins(0, 0, 0, 0);
    undoRow->addWidget(m_undoLabel, 1);
    undoRow->addWidget(undoButton);
    m_undoBar->hide();
    connect(undoButton, &QPushButton::clicked, this, &ChatView::undoDelete);
    m_modelNote = new QLabel;
    m_modelNote->setObjectName(QStringLiteral("chatModelNote"));
    m_modelNote->setWordWrap(true);
    m_modelNote->setTextFormat(Qt::PlainText);
    m_input = new InputPanel(dataDir + QStringLiteral("/attachments"));
    m_composer = new Composer;
    m_composer->setObjectName(QStringLiteral("composer"));
    m_composer->inputPanel = m_input;
    m_composer->setPlaceholderText(tr("Message (Enter sends, Shift+Enter for a new line)"));
    m_composer->setMaximumHeight(90);
    m_send = new QPushButton(tr("Send"));
    m_send->setObjectName(QStringLiteral("sendButton"));
    m_stop = new QPushButton(tr("Stop"));
    m_stop->setObjectName(QStringLiteral("stopButton"));
    m_regenerate = new QPushButton(tr("Regenerate"));
    m_error = new QLabel;
    m_error->setObjectName(QStringLiteral("chatError"));
    m_error->setWordWrap(true);
    m_error->setStyleSheet(QStringLiteral("color: %1;").arg(theme::css(theme::errorText())));
    m_error->hide();
    auto* actions = new QVBoxLayout;
    actions->addWidget(m_send);
    actions->addWidget(m_stop);
    actions->addWidget(m_regenerate);
    auto* composeRow = new QHBoxLayout;
    composeRow->addWidget(m_composer, 1);
    composeRow->addLayout(actions);
    auto* center = new QWidget;
    auto* centerLayout = new QVBoxLayout(center);
    centerLayout->setContentsMargins(0, 0, 0, 0);
    centerLayout->addWidget(m_modelNote);
    centerLayout->addWidget(m_scroll, 1);
    centerLayout->addWidget(m_jump, 0, Qt::AlignRight);
    centerLayout->addWidget(m_error);
    centerLayout->addWidget(m_undoBar);
    centerLayout->addWidget(m_input);
    centerLayout->addWidget(m_editBanner);
    centerLayout->addLayout(composeRow);

    // Per-chat settings.
    m_systemPrompt = new QPlainTextEdit;
    m_systemPrompt->setObjectName(QStringLiteral("systemPrompt"));
    m_systemPrompt->setPlaceholderText(tr("System prompt for this chat"));
    m_temperature = new QDoubleSpinBox;
    m_temperature->setRange(0, 2);
    m_temperature->setSingleStep(0.05);
    m_topP = new QDoubleSpinBox;
    m_topP->setRange(0.01, 1);
    m_topP->setSingleStep(0.05);
    m_topK = new QSpinBox;
    m_topK->setRange(0, 1000);
    m_topK->setSpecialValueText(tr("off"));
    m_repetition = new QDoubleSpinBox;
    m_repetition->setRange(0.5, 2);
    m_repetition->setSingleStep(0.05);
    m_maxTokens = new QSpinBox;
    m_maxTokens->setRange(1, 1 << 20);
    m_thinkingBox = new QCheckBox(tr("Thinking (models that reason)"));
    auto* form = new QFormLayout;
    form->addRow(tr("Temperature"), m_temperature);
    form->addRow(tr("Top-p"), m_topP);
    form->addRow(tr("Top-k"), m_topK);
    form->addRow(tr("Repetition penalty"), m_repetition);
    form->addRow(tr("Max tokens"), m_maxTokens);
    form->addRow(m_thinkingBox);
    auto* settingsBox = new QGroupBox(tr("This chat"));
    auto* settingsLayout = new QVBoxLayout(settingsBox);
    settingsLayout->addWidget(new QLabel(tr("System prompt")));
    settingsLayout->addWidget(m_systemPrompt, 1);
    settingsLayout->addLayout(form);

    auto* splitter = new QSplitter;
    splitter->addWidget(left);
    splitter->addWidget(center);
    splitter->addWidget(settingsBox);
    splitter->setStretchFactor(0, 1);
    splitter->setStretchFactor(1, 4);
    splitter->setStretchFactor(2, 1);
    splitter->setSizes({200, 700, 250});
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(splitter);

    m_renderTimer.setSingleShot(true);
    m_renderTimer.setInterval(50);  // ~20 renders/s at most while streaming
    connect(&m_renderTimer, &QTimer::timeout, this, &ChatView::flushRender);

    connect(newButton, &QPushButton::clicked, this, &ChatView::newChat);
    connect(deleteButton, &QPushButton::clicked, this, &ChatView::deleteCurrentChat);
    connect(exportMd, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export chat"), m_chat.title + ".md", tr("Markdown (*.md)"));
        if (!f.isEmpty() && !exportMarkdown(f)) showError(tr("Could not write %1").arg(f));
    });
    connect(exportJson, &QPushButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Export chat"), m_chat.title + ".json", tr("JSON (*.json)"));
        if (!f.isEmpty() && !this->exportJson(f)) showError(tr("Could not write %1").arg(f));
    });
    connect(m_chatList, &QListWidget::currentRowChanged, this, [this](int row) {
        if (row >= 0) selectChat(m_chatList->item(row)->data(Qt::UserRole).toLongLong());
    });
    connect(m_send, &QPushButton::clicked, this, [this] { send(m_composer->toPlainText()); });
    connect(m_composer, &Composer::submitted, this, [this] { send(m_composer->toPlainText()); });
    connect(m_stop, &QPushButton::clicked, this, &ChatView::stop);
    // Following the answer: the transcript's height changes after the layout runs, later than any render call, so
    // the scroll bar's range change is where we go to the end. The user scrolling up stops following; scrolling
    // back to the end, "Jump to latest" or sending resumes it.
    QScrollBar* bar = m_scroll->verticalScrollBar();
    connect(bar, &QScrollBar::rangeChanged, this, [this, bar](int, int max) {
        if (m_follow) {
            m_scrollingByCode = true;
            bar->setValue(max);
            m_scrollingByCode = false;
        }
        updateJumpButton();
    });
    connect(bar, &QScrollBar::valueChanged, this, [this, bar](int v) {
        if (m_scrollingByCode) return;
        m_follow = v >= bar->maximum() - 4;
        updateJumpButton();
    });
    connect(m_jump, &QPushButton::clicked, this, &ChatView::scrollToEnd);
    // Esc stops the answer being generated, wherever the focus is in this view.
    auto* esc = new QShortcut(QKeySequence(Qt::Key_Escape), this);
    esc->setObjectName(QStringLiteral("stopShortcut"));
    esc->setContext(Qt::WidgetWithChildrenShortcut);
    connect(esc, &QShortcut::activated, this, [this] {
        if (isGenerating()) stop();
        else if (isEditing()) cancelEdit();
    });
    connect(m_regenerate, &QPushButton::clicked, this, &ChatView::regenerate);
    connect(m_systemPrompt, &QPlainTextEdit::textChanged, this, &ChatView::saveSettings);
    for (QDoubleSpinBox* b : {m_temperature, m_topP, m_repetition})
        connect(b, &QDoubleSpinBox::valueChanged, this, &ChatView::saveSettings);
    for (QSpinBox* b : {m_topK, m_maxTokens}) connect(b, &QSpinBox::valueChanged, this, &ChatView::saveSettings);
    connect(m_thinkingBox, &QCheckBox::toggled, this, &ChatView::saveSettings);

    connect(m_bridge, &EngineBridge::textDelta, this, [this](quint64 id, const QString& t) { onDelta(id, t, false); });
    connect(m_bridge, &EngineBridge::reasoningDelta, this, [this](quint64 id, const QString& t) { onDelta(id, t, true); });
    connect(m_bridge, &EngineBridge::finished, this, &ChatView::onFinished);
    // Before the first token, the answer's stats line says what the engine is doing (a screenshot can take long
    // to encode on a CPU).
    connect(m_bridge, &EngineBridge::statsSampled, this, [this](const StatsSample& st) {
        if (!m_activeWidget || !m_activeRequest) return;
        const StoredMessage& m = m_activeWidget->message();
        if (!m.content.isEmpty() || !m.reasoning.isEmpty()) {
            m_activeWidget->setStatus(QString());
            return;
        }
        const QString state = st.requestStates.value(m_activeRequest);
        const QString stage = st.requestStages.value(m_activeRequest);
        QString what = state == QLatin1String("preparing") ? tr("Encoding the image")
                       : state == QLatin1String("waiting") ? tr("Waiting for the engine")
                       : state == QLatin1String("prefill") ? tr("Reading the prompt")
                                                           : QString();
        if (what.isEmpty()) {
            m_activeWidget->setStatus(QString());
            return;
        }
        // "Encoding the image: vision tower 7/24 · 41 s — Esc stops": minutes on a CPU for a full-size screenshot.
        if (!stage.isEmpty()) what += QStringLiteral(": ") + stage;
        what += QStringLiteral(" · %1 s").arg(st.requestAgeMs.value(m_activeRequest) / 1000.0, 0, 'f', 0);
        m_activeWidget->setStatus(what + tr(" — Esc stops"));
    });
    connect(m_bridge, &EngineBridge::requestFailed, this, &ChatView::onFailed);
    // An image that turned out unreadable once its thumbnail was decoded (off the GUI thread) leaves the panel.
    connect(m_input, &InputPanel::imageFailed, this, [this](const QString&, const QString& error) {
        showError(error);
        m_errorFromAttachment = true;
    });
    // A good image after a bad one: the bad one's message is stale.
    // Voice input: the transcript goes into the composer for the person to check and send.
    connect(m_input, &InputPanel::transcriptionFinished, this, [this](const QString& text, const QString& error) {
        if (!error.isEmpty() || text.isEmpty()) return;
        m_composer->insertPlainText(m_composer->toPlainText().isEmpty() ? text : " " + text);
        m_composer->setFocus();
    });
    connect(m_input, &InputPanel::imageReady, this, [this] {
        if (m_errorFromAttachment) showError(QString());
    });
    connect(m_bridge, &EngineBridge::loadFinished, this, &ChatView::onModelLoaded);
    connect(m_bridge, &EngineBridge::unloaded, this, [this] {
        if (m_activeRequest) {
            GenerationResult r;
            r.id = m_activeRequest;
            r.stopReason = QStringLiteral("cancelled (model unloaded)");
            onFinished(m_activeRequest, r);
        }
        m_input->setCapabilities(false, false, tr("No model is loaded."));
        updateButtons();
        updateModelNote();
    });

    const QList<ChatRecord> existing = m_store->chats();
    if (existing.isEmpty()) newChat();
    else {
        reloadChatList();
        selectChat(existing.first().id);
    }
}

QList<ChatRecord> ChatView::chats() const { return m_store->chats(); }

void ChatView::reloadChatList() {
    QSignalBlocker block(m_chatList);
    m_chatList->clear();
    for (const ChatRecord& c : m_store->chats()) {
        auto* item = new QListWidgetItem(c.title);
        item->setData(Qt::UserRole, c.id);
        m_chatList->addItem(item);
        if (c.id == m_chat.id) m_chatList->setCurrentItem(item);
    }
    Q_EMIT chatsChanged();
}

qint64 ChatView::newChat() {
    if (isGenerating()) stop();
    const ChatRecord c = m_store->createChat(tr("New chat"));
    reloadChatList();
    selectChat(c.id);
    return c.id;
}

void ChatView::selectChat(qint64 id) {
    if (id == m_chat.id && !m_messagesLayout->isEmpty() && m_messagesLayout->count() > 1) return;
    if (isGenerating()) stop();  // its answer is saved when the Finished event comes
    if (m_editFrom) cancelEdit();
    m_chat = m_store->chat(id);
    for (int i = 0; i < m_chatList->count(); ++i) {
        if (m_chatList->item(i)->data(Qt::UserRole).toLongLong() == id) {
            QSignalBlocker block(m_chatList);
            m_chatList->setCurrentRow(i);
        }
    }
    loadSettingsIntoControls();
    reloadMessages();
}

void ChatView::deleteCurrentChat() {
    if (isGenerating()) stop();
    cancelEdit();
    // Kept in memory for Undo (the bar under the transcript) until the next delete or the app closes.
    m_deleted = DeletedChat{m_store->chat(m_chat.id), m_store->messages(m_chat.id)};
    m_undoLabel->setText(tr("Deleted \"%1\" (%n message(s)).", nullptr, int(m_deleted->messages.size()))
                             .arg(m_deleted->chat.title));
    m_undoBar->show();
    m_store->deleteChat(m_chat.id);
    m_chat = ChatRecord{};
    const QList<ChatRecord> rest = m_store->chats();
    if (rest.isEmpty()) newChat();
    else {
        reloadChatList();
        selectChat(rest.first().id);
    }
}

void ChatView::reloadMessages() {
    m_activeWidget = nullptr;
    for (MessageWidget* w : messageWidgets()) delete w;
    for (const StoredMessage& m : m_store->messages(m_chat.id)) appendWidget(m);
    updateButtons();
    updateModelNote();
    scrollToEnd();
}

QList<MessageWidget*> ChatView::messageWidgets() const {
    QList<MessageWidget*> out;
    for (int i = 0; i < m_messagesLayout->count(); ++i)
        if (auto* w = qobject_cast<MessageWidget*>(m_messagesLayout->itemAt(i)->widget())) out.append(w);
    return out;
}

MessageWidget* ChatView::appendWidget(const StoredMessage& m) {
    auto* w = new MessageWidget(m);
    m_messagesLayout->insertWidget(m_messagesLayout->count() - 1, w);  // before the stretch
    connect(w, &MessageWidget::copyRequested, this, [](const QString& text) { QApplication::clipboard()->setText(text); });
    connect(w, &MessageWidget::editRequested, this, &ChatView::editMessage);
    connect(w, &MessageWidget::regenerateRequested, this, &ChatView::regenerate);
    return w;
}

void ChatView::scrollToEnd() {
    m_follow = true;
    QScrollBar* bar = m_scroll->verticalScrollBar();
    m_scrollingByCode = true;
    bar->setValue(bar->maximum());
    m_scrollingByCode = false;
    updateJumpButton();
}

void ChatView::updateJumpButton() {
    const QScrollBar* bar = m_scroll->verticalScrollBar();
    m_jump->setVisible(!m_follow && bar->value() < bar->maximum() - 4);
}

void ChatView::showError(const QString& message) {
    m_errorFromAttachment = false;
    m_error->setText(message);
    m_error->setVisible(!message.isEmpty());
}

QString ChatView::errorText() const { return m_error->isHidden() ? QString() : m_error->text(); }

bool ChatView::send(const QString& rawText) {
    const QString text = rawText.trimmed();
    const QStringList attachments = m_input->attachments();
    if (isGenerating() || (text.isEmpty() && attachments.isEmpty() && !m_input->isPreparingImages())) return false;
    if (!m_bridge->isLoaded()) {
        showError(tr("No model is loaded: pick one in the Models view and press Load."));
        return false;
    }
    if (m_input->isPreparingImages()) {
        // A paste being saved or an image being converted to PNG: its file is not there yet (a moment).
        showError(tr("An attached image is still being saved; send again when its thumbnail shows."));
        return false;
    }
    showError(QString());
    if (m_editFrom) {
        // Editing the first message renames a chat whose title was taken from it.
        const QList<StoredMessage> old = m_store->messages(m_chat.id);
        if (!old.isEmpty() && old.first().id == m_editFrom && !text.isEmpty() &&
            m_chat.title == old.first().content.left(40).simplified()) {
            m_chat.title = text.left(40).simplified();
            m_store->updateChat(m_chat);
            reloadChatList();
        }
        m_store->deleteMessagesFrom(m_chat.id, m_editFrom);
        m_editFrom = 0;
        m_editBanner->hide();
        m_send->setText(tr("Send"));
        reloadMessages();
    }
    StoredMessage user;
    user.chatId = m_chat.id;
    user.role = QStringLiteral("user");
    user.content = text;
    user.attachments = attachments;
    user.id = m_store->addMessage(user);
    appendWidget(user);
    if (m_chat.title == tr("New chat") && !text.isEmpty()) {
        m_chat.title = text.left(40).simplified();
        m_store->updateChat(m_chat);
        reloadChatList();
    }
    m_composer->clear();
    m_input->clear();
    startGeneration();
    return true;
}

void ChatView::startGeneration() {
    QList<ChatTurn> turns;
    if (!m_chat.systemPrompt.trimmed().isEmpty()) turns.append({QStringLiteral("system"), m_chat.systemPrompt});
    for (const StoredMessage& m : m_store->messages(m_chat.id)) {
        QStringList images;
        for (const QString& a : m.attachments) {
            if (!InputPanel::isAudioPath(a)) images.append(a);
        }
        turns.append({m.role, m.content, images});
    }
    StoredMessage answer;
    answer.chatId = m_chat.id;
    answer.role = QStringLiteral("assistant");
    answer.id = m_store->addMessage(answer);
    for (MessageWidget* w : messageWidgets()) w->setRegenerateVisible(false);
    m_activeWidget = appendWidget(answer);
    // The chat remembers the model that answers it (exports and the note above the transcript name it).
    const LoadedModelInfo& info = m_bridge->loadedModel();
    m_activeModel = ChatModel{info.path, info.precision, info.device, info.acceptsImages};
    if (m_chat.model.path != m_activeModel.path || m_chat.model.precision != m_activeModel.precision) {
        m_chat.model = m_activeModel;
        m_store->updateChat(m_chat);
    }
    m_activeRequest = m_bridge->submitChat(turns, m_chat.sampling);
    updateModelNote();
    updateButtons();
    scrollToEnd();
    if (m_activeRequest) Q_EMIT generationStarted(m_activeRequest);
}

void ChatView::onDelta(quint64 id, const QString& text, bool reasoning) {
    if (id != m_activeRequest || !m_activeWidget) return;
    StoredMessage& m = m_activeWidget->message();
    (reasoning ? m.reasoning : m.content) += text;
    if (!m_renderTimer.isActive()) m_renderTimer.start();
}

void ChatView::flushRender() {
    if (!m_activeWidget) return;
    m_activeWidget->render();  // the range change that follows scrolls when following (see the constructor)
}

void ChatView::onFinished(quint64 id, const GenerationResult& r) {
    if (id != m_activeRequest || !m_activeWidget) return;
    m_renderTimer.stop();
    StoredMessage& m = m_activeWidget->message();
    m.statsLine = r.statsLine();
    // Stopped after some text (Stop, Esc, the model unloaded mid-answer): the footer says why it ends there.
    if (r.completionTokens == 0 && !m.content.isEmpty() && r.stopReason != QLatin1String("stop"))
        m.statsLine = tr("stopped: %1").arg(r.stopReason);
    m.stats = QJsonObject{{"stop_reason", r.stopReason},       {"prompt_tokens", r.promptTokens},
                          {"completion_tokens", r.completionTokens}, {"ttft_ms", r.ttftMs},
                          {"e2e_ms", r.e2eMs},                 {"tokens_per_second", r.tokensPerSecond()},
                          {"mean_inter_token_ms", r.meanInterTokenMs}, {"model", m_activeModel.toJson()}};
    m_store->updateMessage(m);
    m_activeWidget->render();
    m_activeWidget = nullptr;
    m_activeRequest = 0;
    updateButtons();
    Q_EMIT generationFinished(r);
}

void ChatView::onFailed(quint64 id, const QString& message) {
    if (id == 0 || id == m_activeRequest) showError(message);
    if (id == 0 && m_activeWidget) {  // never reached the engine: drop the empty answer
        m_store->deleteMessagesFrom(m_chat.id, m_activeWidget->message().id);
        delete m_activeWidget;
        m_activeWidget = nullptr;
        m_activeRequest = 0;
        updateButtons();
    }
}

void ChatView::stop() {
    if (m_activeRequest) m_bridge->stop(m_activeRequest);  // Finished (cancelled) follows and saves the answer
}

void ChatView::regenerate() {
    if (isGenerating() || !m_bridge->isLoaded()) return;
    const QList<StoredMessage> msgs = m_store->messages(m_chat.id);
    if (msgs.isEmpty()) return;
    if (msgs.last().role == QLatin1String("assistant")) {
        m_store->deleteMessagesFrom(m_chat.id, msgs.last().id);
        reloadMessages();
    }
    startGeneration();
}

void ChatView::editMessage(qint64 messageId) {
    if (isGenerating()) return;
    for (const StoredMessage& m : m_store->messages(m_chat.id)) {
        if (m.id == messageId && m.role == QLatin1String("user")) {
            m_editFrom = messageId;
            m_composer->setPlainText(m.content);
            m_composer->setFocus();
            m_send->setText(tr("Resend"));
            m_send->setToolTip(tr("Replaces the edited message and everything after it"));
            int later = 0;
            for (const StoredMessage& n : m_store->messages(m_chat.id)) later += n.id > messageId ? 1 : 0;
            m_editLabel->setText(tr("Editing your message: Resend replaces it and the %n message(s) after it. "
                                    "Esc or Cancel leaves it as it was.", nullptr, later));
            m_editBanner->show();
            return;
        }
    }
}

void ChatView::cancelEdit() {
    if (!m_editFrom) return;
    m_editFrom = 0;
    m_composer->clear();
    m_send->setText(tr("Send"));
    m_send->setToolTip(QString());
    m_editBanner->hide();
}

QString ChatView::editBannerText() const { return m_editBanner->isHidden() ? QString() : m_editLabel->text(); }

bool ChatView::undoDelete() {
    if (!m_deleted) return false;
    ChatRecord c = m_store->createChat(m_deleted->chat.title);
    const qint64 id = c.id;
    c = m_deleted->chat;
    c.id = id;
    m_store->updateChat(c);
    for (StoredMessage m : m_deleted->messages) {
        m.chatId = id;
        m.id = m_store->addMessage(m);
        m_store->updateMessage(m);  // reasoning, stats and attachments as they were
    }
    m_deleted.reset();
    m_undoBar->hide();
    reloadChatList();
    selectChat(id);
    return true;
}

QString ChatView::streamingText() const { return m_activeWidget ? m_activeWidget->message().content : QString(); }

void ChatView::updateButtons() {
    const bool busy = isGenerating();
    const bool loaded = m_bridge->isLoaded();
    m_send->setEnabled(!busy);
    m_send->setToolTip(loaded ? QString() : tr("Load a model in the Models view first"));
    m_stop->setEnabled(busy);
    const QList<MessageWidget*> ws = messageWidgets();
    const bool canRegenerate = !busy && loaded && !ws.isEmpty();
    m_regenerate->setEnabled(canRegenerate);
    if (!ws.isEmpty() && ws.last()->message().role == QLatin1String("assistant"))
        ws.last()->setRegenerateVisible(canRegenerate);
}

void ChatView::onModelLoaded(const LoadedModelInfo& info) {
    const QString why = info.acceptsImages
                                ? tr("%1 (%2) takes text and images; it has no audio encoder.")
                                          .arg(QFileInfo(info.path).fileName(), info.architecture)
                                : tr("%1 (%2) takes text only: the engine has no image or audio encoder for it yet.")
                                          .arg(QFileInfo(info.path).fileName(), info.architecture);
    m_input->setCapabilities(info.acceptsImages, info.acceptsAudio, why);
    showError(QString());
    updateButtons();
    updateModelNote();
}

QString ChatView::modelNote() const { return m_modelNote->isHidden() ? QString() : m_modelNote->text(); }

void ChatView::updateModelNote() {
    const bool loaded = m_bridge->isLoaded();
    const LoadedModelInfo& now = m_bridge->loadedModel();
    const QString nowName = loaded ? ChatModel{now.path, now.precision, now.device, now.acceptsImages}.displayName()
                                   : QString();
    QStringList lines;
    if (!m_chat.model.isEmpty()) {
        if (!loaded || (m_chat.model.path == now.path && m_chat.model.precision == now.precision))
            lines << tr("Model: %1").arg(m_chat.model.displayName());
        else
            lines << tr("This chat was answered by %1; the next answer comes from %2.")
                         .arg(m_chat.model.displayName(), nowName);
    }
    if (loaded && !now.acceptsImages) {
        int images = 0;
        for (MessageWidget* w : messageWidgets())
            for (const QString& a : w->message().attachments) images += InputPanel::isAudioPath(a) ? 0 : 1;
        if (images == 1)
            lines << tr("This chat has an image, and %1 reads text only: it is not sent with the next question.")
                         .arg(nowName);
        else if (images > 1)
            lines << tr("This chat has %1 images, and %2 reads text only: they are not sent with the next question.")
                         .arg(images)
                         .arg(nowName);
    }
    m_modelNote->setText(lines.join(QLatin1Char('\n')));
    m_modelNote->setVisible(!lines.isEmpty());
}

void ChatView::loadSettingsIntoControls() {
    m_loadingControls = true;
    m_systemPrompt->setPlainText(m_chat.systemPrompt);
    m_temperature->setValue(m_chat.sampling.temperature);
    m_topP->setValue(m_chat.sampling.topP);
    m_topK->setValue(m_chat.sampling.topK);
    m_repetition->setValue(m_chat.sampling.repetitionPenalty);
    m_maxTokens->setValue(m_chat.sampling.maxTokens);
    m_thinkingBox->setChecked(m_chat.sampling.enableThinking);
    m_loadingControls = false;
}

void ChatView::saveSettings() {
    if (m_loadingControls || m_chat.id == 0) return;
    m_chat.systemPrompt = m_systemPrompt->toPlainText();
    m_chat.sampling = sampling();
    m_store->updateChat(m_chat);
}

SamplingSettings ChatView::sampling() const {
    SamplingSettings s = m_chat.sampling;
    s.temperature = m_temperature->value();
    s.topP = m_topP->value();
    s.topK = m_topK->value();
    s.repetitionPenalty = m_repetition->value();
    s.maxTokens = m_maxTokens->value();
    s.enableThinking = m_thinkingBox->isChecked();
    return s;
}

void ChatView::setSystemPrompt(const QString& prompt) { m_systemPrompt->setPlainText(prompt); }

void ChatView::setSampling(const SamplingSettings& s) {
    m_chat.sampling = s;
    loadSettingsIntoControls();
    saveSettings();
}

// Exports are written beside the target and renamed into place (QSaveFile): an interrupted export never leaves
// half a file where a good one was.
bool ChatView::exportMarkdown(const QString& path) const {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return false;
    return f.write(m_store->exportMarkdown(m_chat.id).toUtf8()) >= 0 && f.commit();
}

bool ChatView::exportJson(const QString& path) const {
    QSaveFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return false;
    return f.write(m_store->exportJson(m_chat.id)) >= 0 && f.commit();
}

}  // namespace wbgui
