import Foundation
import GRDB
import HiveWire

/// Questions: rows an agent asks; their answers (or expiry) come back to it as messages.
///
/// A question and the messages it turns into cannot share a transaction (sends go through the group
/// commit, which wakes parked receivers), so they work like an outbox: the row commits first with its
/// message ids null, then ``deliverOwedQuestionMessages()`` sends what is owed and records the ids.
/// Core calls it after every change and once a second, so a crash in between delays a message, never
/// loses it (at worst, a crash right after a send repeats it once).
extension Broker {
    /// Stores a question from `asker` to `to` (the operator or a live agent), then sends it to the peer.
    public func ask(_ asker: AgentName, to: Recipient, _ asked: QuestionLifecycle.Asked) throws -> QuestionView {
        let now = clock()
        let recipient: String
        switch to {
        case .operator: recipient = "operator"
        case .agent(let peer):
            guard peer != asker else { throw RequestError("ask someone else: a question to yourself would never be answered") }
            recipient = peer.rawValue
        case .broadcast: throw RequestError("a question goes to 'operator' or one agent, not '*'")
        }
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
                """, arguments: [asker.rawValue, recipient, asked.question, Self.json(asked.options), asked.multi, now, now + asked.ttl])
            return db.lastInsertedRowID
        }
        deliverOwedQuestionMessages()
        return try question(id)!
    }

    /// Answers question `id` as `by` (the operator, or the agent it was asked of).
    public func answer(_ id: Int64, by: Sender, choices: [String]?, answer: String?) throws -> QuestionView {
        let now = clock()
        try pool.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM question WHERE id = ?", arguments: [id]) else {
                throw BrokerError.noSuchQuestion(id)
            }
            let q = Self.view(row)
            guard q.to == by.description else {
                // An agent learns nothing about questions not asked of it; the operator sees them all anyway.
                throw by == .operator ? BrokerError.notYourQuestion(id, to: q.to) : BrokerError.noSuchQuestion(id)
            }
            let state = q.state
            // Past its time but not yet swept: it is expired, whatever the sweeper has managed so far.
            let effective = state == .open && q.expiresAt <= now ? QuestionState.expired : state
            guard QuestionLifecycle.apply(.answer, to: effective).next != nil else { throw BrokerError.questionNotOpen(id, state: effective.rawValue) }
            let (picked, text) = try QuestionLifecycle.checkAnswer(q, choices: choices, answer: answer)
            try db.execute(sql: """
                UPDATE question SET state = 'answered', choices = ?, answer = ?, answered_by = ?, answered_at = ? WHERE id = ? AND state = 'open'
                """, arguments: [Self.json(picked), text, by.description, now, id])
        }
        deliverOwedQuestionMessages()
        return try question(id)!
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

    /// Sends every message a question still owes: the question to its peer, the answer or expiry to its
    /// asker. A party that no longer exists gets nothing (id 0); a peer that was destroyed before it saw
    /// the question makes the question expire, so the asker hears of it.
    public func deliverOwedQuestionMessages() {
        questionOutbox.withLock { sendOwed(&$0) }
    }

    /// `unrecorded`: messages sent whose id could not be stored yet (column → question id → message id);
    /// they are recorded before anything is sent again, so a failing write cannot make a message repeat.
    private func sendOwed(_ unrecorded: inout [String: [Int64: Int64]]) {
        for (column, sent) in unrecorded {
            for (question, message) in sent where record(column, message, for: question) { unrecorded[column]?[question] = nil }
        }
        let owed = (try? pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM question INDEXED BY question_owed
                WHERE (state != 'open' AND reply_message_id IS NULL) OR (state = 'open' AND recipient != 'operator' AND ask_message_id IS NULL)
                ORDER BY id LIMIT 200
                """).map { ($0["ask_message_id"] as Int64?, Self.view($0)) }
        }) ?? []
        for (askMessage, q) in owed {
            guard let asker = try? AgentName(q.asker) else { continue }
            if q.state == .open, let peer = try? AgentName(q.to) {
                guard unrecorded["ask_message_id"]?[q.id] == nil else { continue }
                do {
                    let sent = try send(from: .agent(asker), to: .agent(peer), body: QuestionLifecycle.peerBody(q), inReplyTo: nil)
                    if !record("ask_message_id", sent.ids[0], for: q.id) { unrecorded["ask_message_id", default: [:]][q.id] = sent.ids[0] }
                } catch BrokerError.unknownRecipient, BrokerError.destroyedRecipient {
                    try? pool.write { try $0.execute(sql: "UPDATE question SET state = 'expired', ask_message_id = 0 WHERE id = ? AND state = 'open'", arguments: [q.id]) }
                } catch {
                    continue // the store failed; the next round tries again
                }
                continue
            }
            let from: Sender = q.state == .answered
                ? (q.answeredBy == "operator" ? .operator : (try? AgentName(q.answeredBy ?? "")).map(Sender.agent) ?? .system)
                : .system
            let body = q.state == .answered ? QuestionLifecycle.answerBody(q) : QuestionLifecycle.expiredBody(q)
            let replyTo = from == .system ? nil : askMessage.flatMap { $0 > 0 ? $0 : nil }
            guard unrecorded["reply_message_id"]?[q.id] == nil else { continue }
            do {
                let sent = try send(from: from, to: .agent(asker), body: body, inReplyTo: replyTo)
                if !record("reply_message_id", sent.ids[0], for: q.id) { unrecorded["reply_message_id", default: [:]][q.id] = sent.ids[0] }
            } catch BrokerError.unknownRecipient, BrokerError.destroyedRecipient {
                try? pool.write { try $0.execute(sql: "UPDATE question SET reply_message_id = 0 WHERE id = ?", arguments: [q.id]) }
            } catch {
                continue
            }
        }
    }

    /// Stores the id of a message a question turned into; false when the store would not take it.
    private func record(_ column: String, _ message: Int64, for question: Int64) -> Bool {
        precondition(column == "ask_message_id" || column == "reply_message_id")
        return (try? pool.write { try $0.execute(sql: "UPDATE question SET \(column) = ? WHERE id = ?", arguments: [message, question]) }) != nil
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

    private static func json(_ list: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(list)) ?? Data("[]".utf8), as: UTF8.self)
    }

    private static func list(_ text: String?) -> [String] {
        text.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
    }

    static func view(_ r: Row) -> QuestionView {
        QuestionView(id: r["id"], asker: r["asker"], to: r["recipient"], question: r["question"], options: list(r["options"]),
                     multi: r["multi"], createdAt: r["created_at"], expiresAt: r["expires_at"], state: r["state"],
                     choices: list(r["choices"]), answer: r["answer"], answeredBy: r["answered_by"], answeredAt: r["answered_at"])
    }
}
