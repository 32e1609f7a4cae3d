import Foundation
import GRDB
import HiveWire

/// Questions: rows an agent asks; their answers (or expiry) come back to it as messages, through the
/// outbox every store shares (``QuestionOutbox``).
extension Broker: QuestionOutbox {
    /// Stores a question from `asker` to `to` (the operator or a live agent), then sends it to the peer.
    public func ask(_ asker: AgentName, to: Recipient, _ asked: QuestionLifecycle.Asked) throws -> QuestionView {
        let now = clock()
        let recipient = try QuestionLifecycle.recipient(asker: asker, to: to)
        let id = try pool.write { db -> Int64 in
            if recipient != "operator" {
                guard let live = try Queries.isLive(db, recipient) else { throw BrokerError.unknownRecipient(recipient) }
                guard live else { throw BrokerError.destroyedRecipient(recipient) }
            }
            let open = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM question WHERE asker = ? AND state = 'open'", arguments: [asker.rawValue]) ?? 0
            guard open < QuestionLimits.maxOpenPerAsker else { throw BrokerError.questionCap(QuestionLimits.maxOpenPerAsker) }
            try db.execute(sql: """
                INSERT INTO question (asker, recipient, question, options, multi, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [asker.rawValue, recipient, asked.question, QuestionOutboxText.json(asked.options), asked.multi, now, now + asked.ttl])
            return db.lastInsertedRowID
        }
        return try owedSent(id)
    }

    /// Answers question `id` as `by` (the operator, or the agent it was asked of).
    public func answer(_ id: Int64, by: Sender, choices: [String]?, answer: String?) throws -> QuestionView {
        let now = clock()
        try pool.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM question WHERE id = ?", arguments: [id]) else {
                throw BrokerError.noSuchQuestion(id)
            }
            let (picked, text) = try QuestionLifecycle.answering(Self.view(row), by: by, now: now, choices: choices, answer: answer)
            try db.execute(sql: """
                UPDATE question SET state = 'answered', choices = ?, answer = ?, answered_by = ?, answered_at = ? WHERE id = ? AND state = 'open'
                """, arguments: [QuestionOutboxText.json(picked), text, by.description, now, id])
        }
        return try owedSent(id)
    }

    /// Marks open questions whose time ran out as expired and tells their askers. Returns how many expired.
    @discardableResult
    public func expireQuestions() throws -> Int {
        let now = clock()
        // Core asks every second: a read first, so a quiet second never takes the writer from sends.
        let due = try pool.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM question INDEXED BY question_open WHERE state = 'open' AND expires_at <= ? LIMIT 1",
                              arguments: [now]) ?? false
        }
        let n = due ? try pool.write { db -> Int in
            try db.execute(sql: "UPDATE question SET state = 'expired' WHERE state = 'open' AND expires_at <= ?", arguments: [now])
            return db.changesCount
        } : 0
        deliverOwedQuestionMessages()
        return n
    }

    /// Up to 200 questions that still owe a message, oldest first, each with the id of the message that asked it.
    public func owedQuestions() throws -> [(askMessage: Int64?, question: QuestionView)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM question INDEXED BY question_owed
                WHERE (state != 'open' AND reply_message_id IS NULL) OR (state = 'open' AND recipient != 'operator' AND ask_message_id IS NULL)
                ORDER BY id LIMIT 200
                """).map { ($0["ask_message_id"] as Int64?, Self.view($0)) }
        }
    }

    public func recordQuestionMessage(_ kind: OwedMessage, _ message: Int64, for question: Int64) -> Bool {
        (try? pool.write { try $0.execute(sql: "UPDATE question SET \(kind.column) = ? WHERE id = ?", arguments: [message, question]) }) != nil
    }

    public func expireUnaskable(_ question: Int64) {
        try? pool.write { try $0.execute(sql: "UPDATE question SET state = 'expired', ask_message_id = 0 WHERE id = ? AND state = 'open'", arguments: [question]) }
    }

    /// One question, or nil.
    public func question(_ id: Int64) throws -> QuestionView? {
        try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM question WHERE id = ?", arguments: [id]).map(Self.view) }
    }

    /// Open questions (for `to` only, when given), those for the operator first, oldest first; with
    /// `closed`, also the newest `closed` answered or expired ones after them.
    public func questions(to: String? = nil, closed: Int = 0) throws -> [QuestionView] {
        try pool.read { db in
            let filter = to == nil ? "" : "AND recipient = ?"
            let args = StatementArguments(to.map { [$0] } ?? [])
            var rows = try Row.fetchAll(db, sql: """
                SELECT * FROM question INDEXED BY question_open WHERE state = 'open' \(filter)
                ORDER BY recipient != 'operator', id LIMIT 500
                """, arguments: args).map(Self.view)
            if closed > 0 {
                rows += try Row.fetchAll(db, sql: "SELECT * FROM question WHERE state != 'open' \(filter) ORDER BY id DESC LIMIT \(closed)",
                                         arguments: args).map(Self.view)
            }
            return rows
        }
    }

    /// Deletes answered and expired questions older than `window` seconds whose messages are out.
    public func sweepQuestions(olderThan window: Double) throws -> Int {
        let cutoff = clock() - window
        return try pool.write { db in
            try db.execute(sql: "DELETE FROM question WHERE state != 'open' AND reply_message_id IS NOT NULL AND created_at < ?", arguments: [cutoff])
            return db.changesCount
        }
    }

    static func view(_ r: Row) -> QuestionView {
        QuestionView(id: r["id"], asker: r["asker"], to: r["recipient"], question: r["question"], options: QuestionOutboxText.list(r["options"]),
                     multi: r["multi"], createdAt: r["created_at"], expiresAt: r["expires_at"], state: r["state"],
                     choices: QuestionOutboxText.list(r["choices"]), answer: r["answer"], answeredBy: r["answered_by"], answeredAt: r["answered_at"])
    }
}
