import HiveWire
import GRDB

/// The broker's hot queries, on statements prepared once per connection (`cachedStatement`): planning
/// a query against the partial indexes costs more than running it.
enum Queries {
    static func count(_ db: Database, _ state: MessageState, recipient: String) throws -> Int {
        let statement = try db.cachedStatement(sql: "SELECT COUNT(*) FROM message WHERE recipient = ? AND \(state.sqlCondition)")
        return try Int.fetchOne(statement, arguments: [recipient]) ?? 0
    }

    static func agent(_ db: Database, _ name: String) throws -> AgentRecord? {
        try AgentRecord.fetchOne(db.cachedStatement(sql: "SELECT * FROM agent WHERE name = ?"), arguments: [name])
    }

    /// Whether `name` is registered and alive, without decoding the record: nil when unknown.
    static func isLive(_ db: Database, _ name: String) throws -> Bool? {
        try Bool.fetchOne(db.cachedStatement(sql: "SELECT destroyed_at IS NULL FROM agent WHERE name = ?"), arguments: [name])
    }

    static func liveAgentNames(_ db: Database) throws -> [String] {
        try String.fetchAll(db.cachedStatement(sql: "SELECT name FROM agent WHERE destroyed_at IS NULL ORDER BY name"))
    }

    /// Sender and recipient of a message, or nil when it does not exist (any more).
    static func parties(_ db: Database, message id: Int64) throws -> (sender: String, recipient: String)? {
        let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT sender, recipient FROM message WHERE id = ?"), arguments: [id])
        return row.map { ($0["sender"], $0["recipient"]) }
    }

    static func oldestPending(_ db: Database, recipient: String, limit: Int) throws -> [MessageRow] {
        let statement = try db.cachedStatement(sql: "SELECT * FROM message WHERE recipient = ? AND \(MessageState.pending.sqlCondition) ORDER BY id LIMIT ?")
        return try MessageRow.fetchAll(statement, arguments: [recipient, limit])
    }

    static func markDelivered(_ db: Database, id: Int64, at now: Double) throws {
        try db.cachedStatement(sql: "UPDATE message SET delivered_at = ? WHERE id = ?").execute(arguments: [now, id])
    }
}
