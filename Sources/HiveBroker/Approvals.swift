import Foundation
import GRDB
import HiveWire

/// The approval queue: requests the manager makes, the operator resolves, core carries out.
extension Broker {
    /// Queues a request for the operator. One open request per agent and kind at a time.
    public func createApproval(kind: ApprovalKind, agent: AgentName, commit: String?, description: String?, diff: String?,
                               requestedBy: String) throws -> ApprovalView {
        do {
            return try pool.write { db in
                let open = try Int.fetchOne(db, sql: """
                    SELECT id FROM approval WHERE agent = ? AND kind = ? AND state IN ('pending', 'approved') LIMIT 1
                    """, arguments: [agent.rawValue, kind.rawValue])
                if let open {
                    throw RequestError("approval \(open) (\(kind.rawValue) for \(agent)) is still open; wait for the operator, or ask them to deny it")
                }
                try db.execute(sql: """
                    INSERT INTO approval (kind, agent, commit_sha, description, diff, state, requested_by, created_at)
                    VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
                    """, arguments: [kind.rawValue, agent.rawValue, commit, description, diff, requestedBy, clock()])
                return try Self.approval(db, db.lastInsertedRowID)!
            }
        } catch let e as RequestError { throw e } catch { throw Broker.storage(error) }
    }

    /// Moves an approval through ``ApprovalLifecycle``; refuses an event its state does not allow
    /// (two operators approving at once: one wins, the other is told).
    @discardableResult
    public func resolveApproval(_ id: Int64, _ event: ApprovalEvent, note: String? = nil) throws(BrokerError) -> ApprovalView {
        do {
            return try pool.write { db in
                guard let current = try Self.approval(db, id) else { throw BrokerError.noSuchApproval(id) }
                guard let next = ApprovalLifecycle.apply(event, to: current.state).next else {
                    throw BrokerError.approvalNotOpen(id, state: current.state.rawValue)
                }
                try db.execute(sql: "UPDATE approval SET state = ?, note = COALESCE(?, note), resolved_at = ? WHERE id = ?",
                               arguments: [next.rawValue, note, next.isFinal ? clock() : nil, id])
                return try Self.approval(db, id)!
            }
        } catch let e as BrokerError { throw e } catch { throw Broker.storage(error) }
    }

    public func approval(_ id: Int64) throws -> ApprovalView? {
        try pool.read { db in try Self.approval(db, id) }
    }

    /// Open approvals (pending or being carried out), oldest first; with `recent`, also that many of the
    /// latest resolved ones.
    public func approvals(recent: Int = 0) throws -> [ApprovalView] {
        try pool.read { db in
            let open = try Row.fetchAll(db, sql: "SELECT * FROM approval WHERE state IN ('pending', 'approved') ORDER BY id")
            let done = recent > 0 ? try Row.fetchAll(db, sql: """
                SELECT * FROM approval WHERE state NOT IN ('pending', 'approved') ORDER BY id DESC LIMIT ?
                """, arguments: [recent]) : []
            return (open + done.reversed()).map(Self.view)
        }
    }

    /// At boot: approvals core was carrying out when it stopped are failed (what ran before still runs).
    public func failInterruptedApprovals() throws -> [ApprovalView] {
        try pool.write { db in
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM approval WHERE state = 'approved'")
            try db.execute(sql: """
                UPDATE approval SET state = 'failed', note = 'core stopped while carrying this out; nothing was deployed', resolved_at = ?
                WHERE state = 'approved'
                """, arguments: [clock()])
            return try ids.compactMap { try Self.approval(db, $0) }
        }
    }

    static func approval(_ db: Database, _ id: Int64) throws -> ApprovalView? {
        try Row.fetchOne(db, sql: "SELECT * FROM approval WHERE id = ?", arguments: [id]).map(view)
    }

    private static func view(_ row: Row) -> ApprovalView {
        ApprovalView(id: row["id"], kind: row["kind"], agent: row["agent"], commit: row["commit_sha"], description: row["description"],
                     diff: row["diff"], state: row["state"], note: row["note"], requestedBy: row["requested_by"],
                     createdAt: row["created_at"], resolvedAt: row["resolved_at"])
    }
}
