// Chat history in SQLite (Qt SQL): chats with their system prompt and sampling settings, and their messages
// with reasoning, stats and attachments. Used from the GUI thread only; writes are small and local.
#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QList>
#include <QString>
#include <QStringList>

#include "bridge/bridge_types.h"

namespace wbgui {

struct StoredMessage {
    qint64 id = 0;
    qint64 chatId = 0;
    QString role;  // user | assistant
    QString content;
    QString reasoning;
    QString statsLine;        // empty for user messages and answers still streaming
    QJsonObject stats;        // the GenerationResult numbers, for JSON export
    QStringList attachments;  // file paths
};

/// The model a chat last answered with (empty until its first answer).
struct ChatModel {
    QString path;
    QString precision;
    QString device;
    bool acceptsImages = false;
    bool isEmpty() const { return path.isEmpty(); }
    QString displayName() const;  // "stories260K.gguf (fp32)"
    QJsonObject toJson() const;
    static ChatModel fromJson(const QJsonObject& o);
};

struct ChatRecord {
    qint64 id = 0;
    QString title;
    QString systemPrompt;
    SamplingSettings sampling;
    ChatModel model;
    QDateTime updatedAt;
};

class ChatStore {
public:
    ChatStore();
    ~ChatStore();
    ChatStore(const ChatStore&) = delete;
    ChatStore& operator=(const ChatStore&) = delete;

    /// Opens (creating if needed) the database file; false with lastError() naming the file and the cause.
    bool open(const QString& path);
    QString lastError() const { return m_error; }

    QList<ChatRecord> chats() const;  // most recently updated first
    ChatRecord chat(qint64 id) const;
    ChatRecord createChat(const QString& title);
    void updateChat(const ChatRecord& chat);  // title, system prompt, sampling, model; bumps updatedAt
    void deleteChat(qint64 id);

    QList<StoredMessage> messages(qint64 chatId) const;
    qint64 addMessage(const StoredMessage& message);
    void updateMessage(const StoredMessage& message);
    /// Deletes the message with this id and every later one of its chat (edit-and-resend, regenerate).
    void deleteMessagesFrom(qint64 chatId, qint64 messageId);

    QString exportMarkdown(qint64 chatId) const;
    QByteArray exportJson(qint64 chatId) const;

    static QJsonObject samplingToJson(const SamplingSettings& s);
    static SamplingSettings samplingFromJson(const QJsonObject& o);

private:
    void touch(qint64 chatId);
    QString m_connection;
    QString m_error;
};

}  // namespace wbgui
