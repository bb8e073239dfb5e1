// Nothing a user saved is lost: the chat history survives the app being killed at any moment. A child process
// (this executable with --writer) appends messages to a chat store as fast as it can and prints each message's id
// once addMessage has returned; the test kills it with SIGKILL at a random moment, reopens the database and checks
// that SQLite finds it intact and that every message the writer reported is there, whole.
#include <QCoreApplication>
#include <QProcess>
#include <QRandomGenerator>
#include <QSqlDatabase>
#include <QSqlQuery>
#include <QTemporaryDir>
#include <QtTest>
#include <cstdio>

#include "app/chat_store.h"

using namespace wbgui;

namespace {

// A message body whose text says which message it is, so a torn or mixed-up row shows.
QString bodyFor(int n) { return QStringLiteral("message %1 ").arg(n) + QString(2000, QChar(u'a' + n % 26)); }

// The child: appends messages to one new chat until it is killed.
int runWriter(const QString& path) {
    ChatStore store;
    if (!store.open(path)) {
        std::fprintf(stderr, "writer: %s\n", qPrintable(store.lastError()));
        return 1;
    }
    const ChatRecord chat = store.createChat(QStringLiteral("killed mid-write"));
    std::printf("chat %lld\n", static_cast<long long>(chat.id));
    std::fflush(stdout);
    for (int n = 0;; ++n) {
        StoredMessage m;
        m.chatId = chat.id;
        m.role = n % 2 ? QStringLiteral("assistant") : QStringLiteral("user");
        m.content = bodyFor(n);
        const qint64 id = store.addMessage(m);
        std::printf("msg %lld %d\n", static_cast<long long>(id), n);
        std::fflush(stdout);
    }
}

}  // namespace

class TstChatStore : public QObject {
    Q_OBJECT
    QTemporaryDir m_tmp;

private slots:
    void survivesKillsMidWrite() {
        QVERIFY(m_tmp.isValid());
        const QString db = m_tmp.filePath(QStringLiteral("chats.sqlite"));
        QMap<qint64, QList<QPair<qint64, int>>> reported;  // chat -> (message id, n) the writer saw committed
        for (int round = 0; round < 6; ++round) {
            QProcess writer;
            writer.start(QCoreApplication::applicationFilePath(), {QStringLiteral("--writer"), db});
            QVERIFY2(writer.waitForStarted(10000), qPrintable(writer.errorString()));
            // Let it write for a while (at least a few messages), then kill it wherever it is.
            QByteArray out;
            QElapsedTimer t;
            t.start();
            const int runMs = 30 + int(QRandomGenerator::global()->bounded(200));
            while (t.elapsed() < 20000 && (out.count('\n') < 4 || t.elapsed() < runMs)) {
                writer.waitForReadyRead(50);
                out += writer.readAllStandardOutput();
            }
            writer.kill();  // SIGKILL: no destructor, no close
            QVERIFY(writer.waitForFinished(10000));
            out += writer.readAllStandardOutput();
            QVERIFY2(out.count('\n') >= 4, out.constData());
            qint64 chat = -1;
            for (const QByteArray& line : out.split('\n')) {
                const QList<QByteArray> f = line.split(' ');
                if (f.size() == 2 && f[0] == "chat") chat = f[1].toLongLong();
                if (f.size() == 3 && f[0] == "msg") reported[chat].append({f[1].toLongLong(), f[2].toInt()});
            }
            QVERIFY(chat > 0);
        }

        {
            QSqlDatabase raw = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), QStringLiteral("check"));
            raw.setDatabaseName(db);
            QVERIFY(raw.open());
            QSqlQuery q(raw);
            QVERIFY(q.exec(QStringLiteral("PRAGMA integrity_check")) && q.next());
            QCOMPARE(q.value(0).toString(), QStringLiteral("ok"));
            QVERIFY(q.exec(QStringLiteral("PRAGMA journal_mode")) && q.next());
            QCOMPARE(q.value(0).toString(), QStringLiteral("wal"));
        }
        QSqlDatabase::removeDatabase(QStringLiteral("check"));

        ChatStore store;
        QVERIFY2(store.open(db), qPrintable(store.lastError()));
        QCOMPARE(store.chats().size(), 6);
        int checked = 0;
        for (auto it = reported.cbegin(); it != reported.cend(); ++it) {
            QMap<qint64, QString> contents;
            for (const StoredMessage& m : store.messages(it.key())) contents.insert(m.id, m.content);
            for (const auto& [id, n] : it.value()) {
                QVERIFY2(contents.contains(id), qPrintable(QStringLiteral("message %1 of chat %2 was reported saved "
                                                                           "but is gone")
                                                                   .arg(id)
                                                                   .arg(it.key())));
                QCOMPARE(contents.value(id), bodyFor(n));
                ++checked;
            }
            // At most the one message in flight when the kill came is there beyond what was reported.
            QVERIFY(contents.size() <= it.value().size() + 1);
        }
        QVERIFY(checked >= 6 * 4);
    }

    // A database from before chats recorded their model opens, keeps its chats and messages, and gains the
    // column; a chat's model survives a reopen.
    void olderDatabaseGainsTheModelColumn() {
        const QString db = m_tmp.path() + "/old.sqlite";
        {
            QSqlDatabase old = QSqlDatabase::addDatabase("QSQLITE", "old-schema");
            old.setDatabaseName(db);
            QVERIFY(old.open());
            QSqlQuery q(old);
            QVERIFY(q.exec("CREATE TABLE chats (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,"
                           " system_prompt TEXT NOT NULL DEFAULT '', sampling TEXT NOT NULL DEFAULT '{}',"
                           " updated_at TEXT NOT NULL)"));
            QVERIFY(q.exec("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL"
                           " REFERENCES chats(id) ON DELETE CASCADE, role TEXT NOT NULL, content TEXT NOT NULL,"
                           " reasoning TEXT NOT NULL DEFAULT '', stats_line TEXT NOT NULL DEFAULT '',"
                           " stats TEXT NOT NULL DEFAULT '{}', attachments TEXT NOT NULL DEFAULT '[]')"));
            QVERIFY(q.exec("INSERT INTO chats (title, updated_at) VALUES ('from 0.1', '2026-11-01T10:00:00.000Z')"));
            QVERIFY(q.exec("INSERT INTO messages (chat_id, role, content) VALUES (1, 'user', 'kept')"));
            old.close();
        }
        QSqlDatabase::removeDatabase("old-schema");
        {
            ChatStore store;
            QVERIFY2(store.open(db), qPrintable(store.lastError()));
            const QList<ChatRecord> chats = store.chats();
            QCOMPARE(chats.size(), 1);
            QCOMPARE(chats[0].title, QString("from 0.1"));
            QVERIFY(chats[0].model.isEmpty());
            QCOMPARE(store.messages(chats[0].id).size(), 1);
            QCOMPARE(store.messages(chats[0].id)[0].content, QString("kept"));
            ChatRecord c = chats[0];
            c.model = ChatModel{"/models/AutoGLM-Phone-9B", "int8", "cpu (2 threads)", true};
            store.updateChat(c);
            QVERIFY(store.exportMarkdown(c.id).contains("*Model:* `AutoGLM-Phone-9B (int8)`"));
        }
        ChatStore again;
        QVERIFY2(again.open(db), qPrintable(again.lastError()));
        const ChatModel m = again.chats().at(0).model;
        QCOMPARE(m.path, QString("/models/AutoGLM-Phone-9B"));
        QCOMPARE(m.precision, QString("int8"));
        QCOMPARE(m.device, QString("cpu (2 threads)"));
        QVERIFY(m.acceptsImages);
    }
};

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    if (argc == 3 && QByteArray(argv[1]) == "--writer") return runWriter(QString::fromLocal8Bit(argv[2]));
    TstChatStore t;
    return QTest::qExec(&t, argc, argv);
}

#include "tst_chat_store.moc"
