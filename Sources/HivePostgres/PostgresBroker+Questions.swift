import Foundation
import HiveBroker
import HiveWire
import PostgresNIO

/// Questions and approvals on PostgreSQL, ruled by the same lifecycles as on SQLite
/// (``QuestionLifecycle``, ``ApprovalLifecycle``); the questions' outbox is the shared ``QuestionOutbox``.
extension PostgresBroker: QuestionStore, QuestionOutbox {
    static let questionColumns = """
        id, asker, recipient, question, options, multi, created_at, expires_at, state, choices, answer, answered_by, answered_at, ask_message_id
        """

    static func questions(_ rows: PostgresRowSequence) async throws -> [(askMessage: Int64?, question: QuestionView)] {
        var out: [(Int64?, QuestionView)] = []
        for try await (id, asker, to, question, options, multi, created, expires, state, choices, answer, by, at, ask) in rows.decode(
            (Int64, String, String, String, String, Bool, Double, Double, String, String, String?, String?, Double?, Int64?).self) {
            out.append((ask, QuestionView(id: id, asker: asker, to: to, question: question, options: QuestionOutboxText.list(options), multi: multi,
                                          createdAt: created, expiresAt: expires, state: QuestionState(rawValue: state) ?? .expired,
                                          choices: QuestionOutboxText.list(choices), answer: answer, answeredBy: by, answeredAt: at)))
        }
        return out
    }

    public func ask(_ asker: AgentName, to: Recipient, _ asked: QuestionLifecycle.Asked) throws -> QuestionView {
        let now = clock(), logger = self.logger
        let recipient = try QuestionLifecycle.recipient(asker: asker, to: to)
        let id = try write { c -> Int64 in
            if recipient != "operator" {
                guard let record = try await Self.record(c, recipient, logger: logger) else { throw BrokerError.unknownRecipient(recipient) }
                guard record.destroyedAt == nil else { throw BrokerError.destroyedRecipient(recipient) }
            }
            // The asker's row held: two nodes asking for one agent at once cannot both pass the cap.
            try await c.query("SELECT 1 FROM agent WHERE name = \(asker.rawValue) FOR UPDATE", logger: logger)
            var open = 0
            for try await n in try await c.query("SELECT COUNT(*) FROM question WHERE asker = \(asker.rawValue) AND state = 'open'", logger: logger)
                .decode(Int.self) { open = n }
            guard open < QuestionLimits.maxOpenPerAsker else { throw BrokerError.questionCap(QuestionLimits.maxOpenPerAsker) }
            var id: Int64 = 0
            for try await v in try await c.query("""
                INSERT INTO question (asker, recipient, question, options, multi, created_at, expires_at)
                VALUES (\(asker.rawValue), \(recipient), \(asked.question), \(QuestionOutboxText.json(asked.options)), \(asked.multi), \(now), \(now + asked.ttl))
                RETURNING id
                """, logger: logger).decode(Int64.self) { id = v }
            return id
        }
        return try owedSent(id)
    }

    public func answer(_ id: Int64, by: Sender, choices: [String]?, answer: String?) throws -> QuestionView {
        let now = clock(), logger = self.logger
        try write { c in
            guard let q = try await Self.questions(try await c.query(PostgresQuery(unsafeSQL: "SELECT \(Self.questionColumns) FROM question WHERE id = $1 FOR UPDATE",
                                                                                   binds: try Self.binds(id)), logger: logger)).first?.question else {
                throw BrokerError.noSuchQuestion(id)
            }
            let (picked, text) = try QuestionLifecycle.answering(q, by: by, now: now, choices: choices, answer: answer)
            try await c.query("""
                UPDATE question SET state = 'answered', choices = \(QuestionOutboxText.json(picked)), answer = \(text), answered_by = \(by.description),
                                    answered_at = \(now)
                WHERE id = \(id) AND state = 'open'
                """, logger: logger)
        }
        return try owedSent(id)
    }

    @discardableResult
    public func expireQuestions() throws -> Int {
        let now = clock()
        let n = try write { c in
            try await c.changed("UPDATE question SET state = 'expired' WHERE state = 'open' AND expires_at <= \(now) RETURNING 1", logger: self.logger)
        }
        deliverOwedQuestionMessages()
        return n
    }

    public func question(_ id: Int64) throws -> QuestionView? {
        try read { client in
            try await Self.questions(try await client.query(PostgresQuery(unsafeSQL: "SELECT \(Self.questionColumns) FROM question WHERE id = $1",
                                                                          binds: try Self.binds(id)), logger: self.logger)).first?.question
        }
    }

    public func questions(to: String?, closed: Int) throws -> [QuestionView] {
        try read { client in
            let filter = to == nil ? "" : "AND recipient = $1"
            let binds = try to.map { try Self.binds($0) } ?? PostgresBindings()
            var rows = try await Self.questions(try await client.query(PostgresQuery(unsafeSQL: """
                SELECT \(Self.questionColumns) FROM question WHERE state = 'open' \(filter) ORDER BY recipient != 'operator', id LIMIT 500
                """, binds: binds), logger: self.logger)).map(\.question)
            if closed > 0 {
                rows += try await Self.questions(try await client.query(PostgresQuery(unsafeSQL: """
                    SELECT \(Self.questionColumns) FROM question WHERE state != 'open' \(filter) ORDER BY id DESC LIMIT \(max(0, closed))
                    """, binds: binds), logger: self.logger)).map(\.question)
            }
            return rows
        }
    }

    public func sweepQuestions(olderThan window: Double) throws -> Int {
        let cutoff = clock() - window
        return try write { c in
            try await c.changed("DELETE FROM question WHERE state != 'open' AND reply_message_id IS NOT NULL AND created_at < \(cutoff) RETURNING 1",
                                logger: self.logger)
        }
    }

    // The outbox's primitives (see QuestionOutbox).

    public func owedQuestions() throws -> [(askMessage: Int64?, question: QuestionView)] {
        try read { client in
            try await Self.questions(try await client.query(PostgresQuery(unsafeSQL: """
                SELECT \(Self.questionColumns) FROM question
                WHERE (state != 'open' AND reply_message_id IS NULL) OR (state = 'open' AND recipient != 'operator' AND ask_message_id IS NULL)
                ORDER BY id LIMIT 200
                """), logger: self.logger))
        }
    }

    public func recordQuestionMessage(_ kind: OwedMessage, _ message: Int64, for question: Int64) -> Bool {
        (try? read { client in
            // Never over another message's id: a late retry of a record that did land changes nothing.
            try await client.query(PostgresQuery(unsafeSQL: "UPDATE question SET \(kind.column) = $1 WHERE id = $2 AND (\(kind.column) IS NULL OR \(kind.column) = $1)",
                                                 binds: try Self.binds(message, question)),
                                   logger: self.logger)
        }) != nil
    }

    public func expireUnaskable(_ question: Int64) {
        _ = try? read { client in
            try await client.query("UPDATE question SET state = 'expired', ask_message_id = 0 WHERE id = \(question) AND state = 'open'", logger: self.logger)
        }
    }
}

extension PostgresBroker: ApprovalStore {
    static let approvalColumns = "id, kind, agent, commit_sha, description, diff, state, note, requested_by, created_at, resolved_at"

    static func approvals(_ rows: PostgresRowSequence) async throws -> [ApprovalView] {
        var out: [ApprovalView] = []
        for try await (id, kind, agent, commit, description, diff, state, note, by, created, resolved) in rows.decode(
            (Int64, String, String, String?, String?, String?, String, String?, String, Double, Double?).self) {
            // A kind or state this build does not know (a newer hive wrote it) reads as one that ends failed, as on SQLite.
            out.append(ApprovalView(id: id, kind: ApprovalKind(rawValue: kind) ?? .applyCommit, agent: agent, commit: commit, description: description,
                                    diff: diff, state: ApprovalState(rawValue: state) ?? .failed, note: note, requestedBy: by,
                                    createdAt: created, resolvedAt: resolved))
        }
        return out
    }

    public func createApproval(kind: ApprovalKind, agent: AgentName, commit: String?, description: String?, diff: String?,
                               requestedBy: String) throws -> ApprovalView {
        let now = clock(), logger = self.logger
        return try write { c in
            var open: Int64?
            for try await id in try await c.query("""
                SELECT id FROM approval WHERE agent = \(agent.rawValue) AND kind = \(kind.rawValue) AND state IN ('pending', 'approved') LIMIT 1
                """, logger: logger).decode(Int64.self) { open = id }
            if let open {
                throw RequestError("approval \(open) (\(kind.rawValue) for \(agent)) is still open; wait for the operator, or ask them to deny it")
            }
            // The unique index on open approvals settles two nodes asking at once: the loser is told as above.
            do {
                return try await Self.approvals(try await c.query("""
                INSERT INTO approval (kind, agent, commit_sha, description, diff, state, requested_by, created_at)
                VALUES (\(kind.rawValue), \(agent.rawValue), \(commit), \(description), \(diff), 'pending', \(requestedBy), \(now))
                RETURNING \(unescaped: Self.approvalColumns)
                """, logger: logger))[0]
            } catch let e as PSQLError where e.serverInfo?[.sqlState] == "23505" {
                throw RequestError("an approval (\(kind.rawValue) for \(agent)) is still open; wait for the operator, or ask them to deny it")
            }
        }
    }

    @discardableResult
    public func resolveApproval(_ id: Int64, _ event: ApprovalEvent, note: String?) throws(BrokerError) -> ApprovalView {
        let now = clock(), logger = self.logger
        return try Self.typed {
            try write { c in
                guard let current = try await Self.approvals(try await c.query(PostgresQuery(unsafeSQL: "SELECT \(Self.approvalColumns) FROM approval WHERE id = $1 FOR UPDATE",
                                                                                             binds: try Self.binds(id)), logger: logger)).first else {
                    throw BrokerError.noSuchApproval(id)
                }
                guard let next = ApprovalLifecycle.apply(event, to: current.state).next else {
                    throw BrokerError.approvalNotOpen(id, state: current.state.rawValue)
                }
                let resolved: Double? = next.isFinal ? now : nil
                return try await Self.approvals(try await c.query("""
                    UPDATE approval SET state = \(next.rawValue), note = COALESCE(\(note), note), resolved_at = \(resolved) WHERE id = \(id)
                    RETURNING \(unescaped: Self.approvalColumns)
                    """, logger: logger))[0]
            }
        }
    }

    public func approval(_ id: Int64) throws -> ApprovalView? {
        try read { client in
            try await Self.approvals(try await client.query(PostgresQuery(unsafeSQL: "SELECT \(Self.approvalColumns) FROM approval WHERE id = $1",
                                                                          binds: try Self.binds(id)), logger: self.logger)).first
        }
    }

    public func approvals(recent: Int) throws -> [ApprovalView] {
        try read { client in
            let open = try await Self.approvals(try await client.query(PostgresQuery(unsafeSQL: """
                SELECT \(Self.approvalColumns) FROM approval WHERE state IN ('pending', 'approved') ORDER BY id
                """), logger: self.logger))
            let done = recent > 0 ? try await Self.approvals(try await client.query(PostgresQuery(unsafeSQL: """
                SELECT \(Self.approvalColumns) FROM approval WHERE state NOT IN ('pending', 'approved') ORDER BY id DESC LIMIT $1
                """, binds: try Self.binds(recent)), logger: self.logger)) : []
            return open + done.reversed()
        }
    }

    public func failInterruptedApprovals() throws -> [ApprovalView] {
        let now = clock()
        return try write { c in
            try await Self.approvals(try await c.query(PostgresQuery(unsafeSQL: """
                UPDATE approval SET state = 'failed', note = 'core stopped while carrying this out; nothing was deployed', resolved_at = $1
                WHERE state = 'approved' RETURNING \(Self.approvalColumns)
                """, binds: try Self.binds(now)), logger: self.logger)).sorted { $0.id < $1.id }
        }
    }
}
