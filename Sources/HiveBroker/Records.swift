import GRDB
import HiveWire

/// One row of the `message` table.
struct MessageRow: Codable, FetchableRecord, MutablePersistableRecord, Sendable {
    static let databaseTableName = "message"
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    var id: Int64?
    var sender: String
    var recipient: String
    var body: String
    var sentAt: Double
    var deliveredAt: Double?
    var ackedAt: Double?
    var inReplyTo: Int64?
    var broadcast: Bool
    var redelivered: Bool

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    var lifecycle: MessageLifecycle {
        MessageLifecycle(state: MessageState(deliveredAt: deliveredAt, ackedAt: ackedAt), redelivered: redelivered)
    }

    var view: MessageView {
        MessageView(id: id ?? 0, from: sender, to: recipient, body: body, sentAt: sentAt,
                    deliveredAt: deliveredAt, ackedAt: ackedAt, inReplyTo: inReplyTo,
                    broadcast: broadcast, redelivered: redelivered, state: lifecycle.state.rawValue)
    }
}

/// One row of the `agent` table: the registry.
public struct AgentRecord: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "agent"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase

    public var name: String
    public var createdAt: Double
    /// Set when destroyed without purge: the agent is a tombstone.
    public var destroyedAt: Double?
}

/// An agent with its inbox counters, for `list`.
public struct AgentCounts: Sendable, Equatable {
    public var record: AgentRecord
    public var unread: Int
    public var inflight: Int
}
