// The Chat view: several chats kept in SQLite, streaming Markdown answers with a collapsible thinking section,
// stop / regenerate / edit-and-resend / copy, a stats line under each answer, and per-chat system prompt and
// sampling settings. Text deltas are buffered and rendered on a short timer, so a fast model costs the GUI
// thread a few renders a second rather than one per token.
#pragma once

#include <QPlainTextEdit>
#include <QTextBrowser>
#include <optional>
#include <QTimer>
#include <QWidget>

#include "app/chat_store.h"
#include "bridge/bridge_types.h"

class QCheckBox;
class QDoubleSpinBox;
class QLabel;
class QListWidget;
class QPushButton;
class QScrollArea;
class QSpinBox;
class QToolButton;
class QVBoxLayout;

namespace wbgui {

class EngineBridge;
class InputPanel;
struct LoadedModelInfo;

/// A read-only Markdown view as tall as its document, for stacking messages in one scroll area.
class MarkdownView : public QTextBrowser {
    Q_OBJECT
public:
    explicit MarkdownView(QWidget* parent = nullptr);
    void setMarkdownText(const QString& md);
    QString markdownText() const { return m_text; }

private:
    void fitHeight();
    void monospaceCode();
    QString m_text;
};

class MessageWidget : public QFrame {
    Q_OBJECT
public:
    explicit MessageWidget(const StoredMessage& message, QWidget* parent = nullptr);
    StoredMessage& message() { return m_message; }
    /// Re-renders text, reasoning and stats from message().
    void render();
    void setRegenerateVisible(bool visible);
    /// What the engine is doing before the first token ("Encoding the image…"); shown until the stats line.
    void setStatus(const QString& status);
    QString statusText() const;
    bool thinkingExpanded() const;
    void setThinkingExpanded(bool expanded);
    QString answerText() const { return m_answer->markdownText(); }
    /// Opens the attached image at `index` (among the images) in an ImageViewer; null when there is none.
    QWidget* openImage(int index);

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;
    void changeEvent(QEvent* event) override;

private:
    void applyColors();

public:

Q_SIGNALS:
    void copyRequested(const QString& text);
    void editRequested(qint64 messageId);
    void regenerateRequested();

private:
    StoredMessage m_message;
    QLabel* m_attachments;
    QToolButton* m_thinkingToggle;
    MarkdownView* m_thinking;
    MarkdownView* m_answer;
    QLabel* m_stats;
    QString m_status;
    QToolButton* m_regenerate;
};

/// The message box: Enter sends, Shift+Enter breaks the line, a pasted image goes to the input panel.
class Composer : public QPlainTextEdit {
    Q_OBJECT
public:
    using QPlainTextEdit::QPlainTextEdit;
    InputPanel* inputPanel = nullptr;

Q_SIGNALS:
    void submitted();

protected:
    void keyPressEvent(QKeyEvent* e) override;
    bool canInsertFromMimeData(const QMimeData* source) const override;
    void insertFromMimeData(const QMimeData* source) override;
};

class ChatView : public QWidget {
    Q_OBJECT
public:
    ChatView(EngineBridge* bridge, ChatStore* store, const QString& dataDir, QWidget* parent = nullptr);

    qint64 currentChatId() const { return m_chat.id; }
    ChatRecord currentChat() const { return m_chat; }
    QList<ChatRecord> chats() const;
    qint64 newChat();
    void selectChat(qint64 id);
    void deleteCurrentChat();

    /// Sends `text` (and the input panel's attachments) as the user; false when nothing can be sent.
    bool send(const QString& text);
    void stop();
    void regenerate();
    /// Puts a user message back into the composer; the next send replaces it and everything after it.
    void editMessage(qint64 messageId);
    /// Leaves editing: the composer empties, the transcript stays as it was.
    void cancelEdit();
    bool isEditing() const { return m_editFrom != 0; }
    QString editBannerText() const;
    /// Brings back the chat deleteCurrentChat removed last (its messages, title, settings and model); false when
    /// there is none to bring back.
    bool undoDelete();
    bool canUndoDelete() const { return m_deleted.has_value(); }
    bool isGenerating() const { return m_activeRequest != 0; }

    QList<MessageWidget*> messageWidgets() const;
    QString streamingText() const;  // the answer being generated, as received so far
    QString errorText() const;
    Composer* composer() const { return m_composer; }
    InputPanel* inputPanel() const { return m_input; }
    QScrollArea* transcript() const { return m_scroll; }
    /// Whether the transcript follows the newest text (true until the user scrolls up; sending turns it back on).
    bool followsLatest() const { return m_follow; }
    /// The line above the transcript: the chat's model, and what changes when another model is loaded now.
    QString modelNote() const;
    QPushButton* jumpToLatestButton() const { return m_jump; }

    void setSystemPrompt(const QString& prompt);
    void setSampling(const SamplingSettings& s);
    SamplingSettings sampling() const;

    bool exportMarkdown(const QString& path) const;
    bool exportJson(const QString& path) const;

Q_SIGNALS:
    void generationStarted(quint64 id);
    void generationFinished(const wbgui::GenerationResult& result);
    void chatsChanged();

private:
    void reloadChatList();
    void reloadMessages();
    MessageWidget* appendWidget(const StoredMessage& m);
    void startGeneration();
    void onDelta(quint64 id, const QString& text, bool reasoning);
    void onFinished(quint64 id, const GenerationResult& result);
    void onFailed(quint64 id, const QString& message);
    void flushRender();
    void saveSettings();
    void loadSettingsIntoControls();
    void updateButtons();
    void showError(const QString& message);
    void scrollToEnd();
    void updateJumpButton();
    void updateModelNote();
    void onModelLoaded(const LoadedModelInfo& info);

    EngineBridge* m_bridge;
    ChatStore* m_store;
    ChatRecord m_chat;
    quint64 m_activeRequest = 0;
    MessageWidget* m_activeWidget = nullptr;
    qint64 m_editFrom = 0;  // a user message id: the next send replaces it and what follows
    QTimer m_renderTimer;
    bool m_loadingControls = false;

    QListWidget* m_chatList;
    QScrollArea* m_scroll;
    QPushButton* m_jump;
    QWidget* m_editBanner;
    QLabel* m_editLabel;
    QWidget* m_undoBar;
    QLabel* m_undoLabel;
    struct DeletedChat {
        ChatRecord chat;
        QList<StoredMessage> messages;
    };
    std::optional<DeletedChat> m_deleted;
    QLabel* m_modelNote;
    ChatModel m_activeModel;  // the model answering m_activeRequest
    bool m_follow = true;
    bool m_errorFromAttachment = false;  // the error shown is an image that could not be attached
    bool m_scrollingByCode = false;  // our own setValue: not the user scrolling
    QWidget* m_messagesHost;
    QVBoxLayout* m_messagesLayout;
    InputPanel* m_input;
    Composer* m_composer;
    QPushButton* m_send;
    QPushButton* m_stop;
    QPushButton* m_regenerate;
    QLabel* m_error;
    QPlainTextEdit* m_systemPrompt;
    QDoubleSpinBox* m_temperature;
    QDoubleSpinBox* m_topP;
    QSpinBox* m_topK;
    QDoubleSpinBox* m_repetition;
    QSpinBox* m_maxTokens;
    QCheckBox* m_thinkingBox;
};

}  // namespace wbgui
