#include "app/chat_store.h"

#include <QFileInfo>

#include <QJsonArray>
#include <QJsonDocument>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QVariant>
#include <atomic>

namespace wbgui {

static std::atomic<int> s_connectionCounter{0};

// A failed statement is a bug or a broken disk, not a user error: say which, and keep the app running.
// A null QString binds as SQL NULL; the columns are NOT NULL text.
static QString nn(const QString& s) { return s.isNull() ? QStringLiteral("") : s; }

static bool run(QSqlQuery& q) {
    if (q.exec()) return true;
    qWarning("chat store: %s: %s", qPrintable(q.lastQuery()), qPrintable(q.lastError().text()));
    return false;
}

ChatStore::ChatStore() : m_connection(QStringLiteral("wb-chats-%1").arg(++s_connectionCounter)) {}

ChatStore::~ChatStore() {
    {
        QSqlDatabase db = QSqlDatabase::database(m_connection, false);
        if (db.isValid()) db.close();
    }
    if (QSqlDatabase::contains(m_connection)) QSqlDatabase::removeDatabase(m_connection);
}

bool ChatStore::open(const QString& path) {
    QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), m_connection);
    db.setDatabaseName(path);
    if (!db.open()) {
        m_error = path + QStringLiteral(": ") + db.lastError().text();
        return false;
    }
    QSqlQuery q(db);
    // Write-ahead log: a write either lands whole or not at all even when the app is killed mid-write (SIGKILL,
    // a crash, the session ending), and readers never see half of it; NORMAL sync is durable against process
    // death, which is what a desktop app meets (tst_chat_store kills a writer mid-stream and reopens).
    const char* schema[] = {
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA busy_timeout = 5000",
        "PRAGMA foreign_keys = ON",
        "CREATE TABLE IF NOT EXISTS chats (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,"
        " system_prompt TEXT NOT NULL DEFAULT '', sampling TEXT NOT NULL DEFAULT '{}', updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE, role TEXT NOT NULL,"
        " content TEXT NOT NULL, reasoning TEXT NOT NULL DEFAULT '', stats_line TEXT NOT NULL DEFAULT '',"
        " stats TEXT NOT NULL DEFAULT '{}', attachments TEXT NOT NULL DEFAULT '[]')",
        "CREATE INDEX IF NOT EXISTS messages_by_chat ON messages(chat_id, id)",
    };
    for (const char* sql : schema) {
        if (!q.exec(QString::fromLatin1(sql))) {
            m_error = path + QStringLiteral(": ") + q.lastError().text();
            return false;
        }
    }
    // Databases written before chats recorded their model gain the column (existing chats: no model yet).
    bool hasModel = false;
    if (q.exec(QStringLiteral("PRAGMA table_info(chats)")))
        while (q.next()) hasModel = hasModel || q.value(1).toString() == QLatin1String("model");
    if (!hasModel && !q.exec(QStringLiteral("ALTER TABLE chats ADD COLUMN model TEXT NOT NULL DEFAULT '{}'"))) {
        m_error = path + QStringLiteral(": ") + q.lastError().text();
        return false;
    }
    return true;
}

QString ChatModel::displayName() const {
    if (path.isEmpty()) return {};
    return QFileInfo(path).fileName() + (precision.isEmpty() ? QString() : QStringLiteral(" (") + precision + QStringLiteral(")"));
}

QJsonObject ChatModel::toJson() const {
    if (path.isEmpty()) return {};
    return QJsonObject{{"path", path}, {"name", QFileInfo(path).fileName()}, {"precision", precision},
                       {"device", device}, {"accepts_images", acceptsImages}};
}

ChatModel ChatModel::fromJson(const QJsonObject& o) {
    ChatModel m;
    m.path = o.value("path").toString();
    m.precision = o.value("precision").toString();
    m.device = o.value("device").toString();
    m.acceptsImages = o.value("accepts_images").toBool();
    return m;
}

QJsonObject ChatStore::samplingToJson(const SamplingSettings& s) {
    return QJsonObject{{"temperature", s.temperature}, {"top_p", s.topP},       {"top_k", s.topK},
                       {"repetition_penalty", s.repetitionPenalty},            {"max_tokens", s.maxTokens},
                       {"enable_thinking", s.enableThinking},                  {"seed", QString::number(s.seed)}};
}

SamplingSettings ChatStore::samplingFromJson(const QJsonObject& o) {
    SamplingSettings s;
    s.temperature = o.value("temperature").toDouble(s.temperature);
    s.topP = o.value("top_p").toDouble(s.topP);
    s.topK = o.value("top_k").toInt(s.topK);
    s.repetitionPenalty = o.value("repetition_penalty").toDouble(s.repetitionPenalty);
    s.maxTokens = o.value("max_tokens").toInt(s.maxTokens);
    s.enableThinking = o.value("enable_thinking").toBool(s.enableThinking);
    s.seed = o.value("seed").toString().toULongLong();
    return s;
}

static ChatRecord chatFromQuery(const QSqlQuery& q) {
    ChatRecord c;
    c.id = q.value(0).toLongLong();
    c.title = q.value(1).toString();
    c.systemPrompt = q.value(2).toString();
    c.sampling = ChatStore::samplingFromJson(QJsonDocument::fromJson(q.value(3).toByteArray()).object());
    c.updatedAt = QDateTime::fromString(q.value(4).toString(), Qt::ISODateWithMs);
    c.model = ChatModel::fromJson(QJsonDocument::fromJson(q.value(5).toByteArray()).object());
    return c;
}

QList<ChatRecord> ChatStore::chats() const {
    QList<ChatRecord> out;
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.exec(QStringLiteral("SELECT id, title, system_prompt, sampling, updated_at, model FROM chats ORDER BY updated_at DESC, id DESC"));
    while (q.next()) out.append(chatFromQuery(q));
    return out;
}

ChatRecord ChatStore::chat(qint64 id) const {
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("SELECT id, title, system_prompt, sampling, updated_at, model FROM chats WHERE id = ?"));
    q.addBindValue(id);
    if (q.exec() && q.next()) return chatFromQuery(q);
    return {};
}

ChatRecord ChatStore::createChat(const QString& title) {
    ChatRecord c;
    c.title = title;
    c.updatedAt = QDateTime::currentDateTimeUtc();
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("INSERT INTO chats (title, system_prompt, sampling, updated_at) VALUES (?, ?, ?, ?)"));
    q.addBindValue(nn(c.title));
    q.addBindValue(nn(c.systemPrompt));
    q.addBindValue(QJsonDocument(samplingToJson(c.sampling)).toJson(QJsonDocument::Compact));
    q.addBindValue(c.updatedAt.toString(Qt::ISODateWithMs));
    run(q);
    c.id = q.lastInsertId().toLongLong();
    return c;
}

void ChatStore::updateChat(const ChatRecord& c) {
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("UPDATE chats SET title = ?, system_prompt = ?, sampling = ?, model = ?, updated_at = ?"
                             " WHERE id = ?"));
    q.addBindValue(nn(c.title));
    q.addBindValue(nn(c.systemPrompt));
    q.addBindValue(QJsonDocument(samplingToJson(c.sampling)).toJson(QJsonDocument::Compact));
    q.addBindValue(QJsonDocument(c.model.toJson()).toJson(QJsonDocument::Compact));
    q.addBindValue(QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs));
    q.addBindValue(c.id);
    run(q);
}

void ChatStore::touch(qint64 chatId) {
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("UPDATE chats SET updated_at = ? WHERE id = ?"));
    q.addBindValue(QDateTime::currentDateTimeUtc().toString(Qt::ISODateWithMs));
    q.addBindValue(chatId);
    run(q);
}

void ChatStore::deleteChat(qint64 id) {
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("DELETE FROM messages WHERE chat_id = ?"));
    q.addBindValue(id);
    run(q);
    q.prepare(QStringLiteral("DELETE FROM chats WHERE id = ?"));
    q.addBindValue(id);
    run(q);
}

QList<StoredMessage> ChatStore::messages(qint64 chatId) const {
    QList<StoredMessage> out;
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("SELECT id, role, content, reasoning, stats_line, stats, attachments FROM messages"
                             " WHERE chat_id = ? ORDER BY id"));
    q.addBindValue(chatId);
    run(q);
    while (q.next()) {
        StoredMessage m;
        m.id = q.value(0).toLongLong();
        m.chatId = chatId;
        m.role = q.value(1).toString();
        m.content = q.value(2).toString();
        m.reasoning = q.value(3).toString();
        m.statsLine = q.value(4).toString();
        m.stats = QJsonDocument::fromJson(q.value(5).toByteArray()).object();
        for (const QJsonValue& v : QJsonDocument::fromJson(q.value(6).toByteArray()).array())
            m.attachments.append(v.toString());
        out.append(m);
    }
    return out;
}

static QByteArray attachmentsJson(const QStringList& a) {
    return QJsonDocument(QJsonArray::fromStringList(a)).toJson(QJsonDocument::Compact);
}

qint64 ChatStore::addMessage(const StoredMessage& m) {
    // The message and its chat's updated_at land together.
    QSqlDatabase db = QSqlDatabase::database(m_connection);
    const bool inTransaction = db.transaction();
    QSqlQuery q(db);
    q.prepare(QStringLiteral("INSERT INTO messages (chat_id, role, content, reasoning, stats_line, stats, attachments)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?)"));
    q.addBindValue(m.chatId);
    q.addBindValue(nn(m.role));
    q.addBindValue(nn(m.content));
    q.addBindValue(nn(m.reasoning));
    q.addBindValue(nn(m.statsLine));
    q.addBindValue(QJsonDocument(m.stats).toJson(QJsonDocument::Compact));
    q.addBindValue(attachmentsJson(m.attachments));
    run(q);
    touch(m.chatId);
    if (inTransaction && !db.commit()) qWarning("chat store: commit: %s", qPrintable(db.lastError().text()));
    return q.lastInsertId().toLongLong();
}

void ChatStore::updateMessage(const StoredMessage& m) {
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("UPDATE messages SET content = ?, reasoning = ?, stats_line = ?, stats = ?, attachments = ?"
                             " WHERE id = ?"));
    q.addBindValue(nn(m.content));
    q.addBindValue(nn(m.reasoning));
    q.addBindValue(nn(m.statsLine));
    q.addBindValue(QJsonDocument(m.stats).toJson(QJsonDocument::Compact));
    q.addBindValue(attachmentsJson(m.attachments));
    q.addBindValue(m.id);
    run(q);
    touch(m.chatId);
}

void ChatStore::deleteMessagesFrom(qint64 chatId, qint64 messageId) {
    QSqlQuery q(QSqlDatabase::database(m_connection));
    q.prepare(QStringLiteral("DELETE FROM messages WHERE chat_id = ? AND id >= ?"));
    q.addBindValue(chatId);
    q.addBindValue(messageId);
    run(q);
    touch(chatId);
}

QString ChatStore::exportMarkdown(qint64 chatId) const {
    const ChatRecord c = chat(chatId);
    QString md = QStringLiteral("# ") + c.title + QStringLiteral("\n\n");
    if (!c.model.isEmpty()) md += QStringLiteral("*Model:* `") + c.model.displayName() + QStringLiteral("`\n\n");
    if (!c.systemPrompt.isEmpty()) md += QStringLiteral("> **System:** ") + c.systemPrompt + QStringLiteral("\n\n");
    for (const StoredMessage& m : messages(chatId)) {
        QString who = m.role == QLatin1String("user") ? QStringLiteral("User") : QStringLiteral("Assistant");
        // An answer from another model than the chat's last one says which (a chat can switch models).
        const ChatModel by = ChatModel::fromJson(m.stats.value("model").toObject());
        if (!by.isEmpty() && by.path != c.model.path) who += QStringLiteral(" — ") + by.displayName();
        md += QStringLiteral("## ") + who + QStringLiteral("\n\n");
        for (const QString& a : m.attachments) md += QStringLiteral("*Attachment:* `") + a + QStringLiteral("`\n\n");
        if (!m.reasoning.isEmpty()) {
            md += QStringLiteral("<details><summary>Thinking</summary>\n\n") + m.reasoning +
                  QStringLiteral("\n\n</details>\n\n");
        }
        md += m.content + QStringLiteral("\n\n");
        if (!m.statsLine.isEmpty()) md += QStringLiteral("*") + m.statsLine + QStringLiteral("*\n\n");
    }
    return md;
}

QByteArray ChatStore::exportJson(qint64 chatId) const {
    const ChatRecord c = chat(chatId);
    QJsonArray msgs;
    if (!c.systemPrompt.isEmpty()) msgs.append(QJsonObject{{"role", "system"}, {"content", c.systemPrompt}});
    for (const StoredMessage& m : messages(chatId)) {
        QJsonObject o{{"role", m.role}, {"content", m.content}};
        if (!m.reasoning.isEmpty()) o["reasoning_content"] = m.reasoning;
        if (!m.attachments.isEmpty()) o["attachments"] = QJsonArray::fromStringList(m.attachments);
        if (!m.stats.isEmpty()) o["stats"] = m.stats;
        msgs.append(o);
    }
    QJsonObject root{{"title", c.title}, {"sampling", samplingToJson(c.sampling)}, {"messages", msgs}};
    if (!c.model.isEmpty()) root["model"] = c.model.toJson();
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

}  // namespace wbgui
