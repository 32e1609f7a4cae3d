import GRDB
import HiveWire

/// One row of the `message` table. Read and written by hand rather than through Codable: this is the
/// hot path of every send and recv, and GRDB's Codable bridge (with snake_case key conversion) cost
/// more than the SQL itself.
struct MessageRow: FetchableRecord, Sendable {

    var id: Int64?
    var sender: String
    var recipient: String
    var body: String
    var sentAt: Double
    var deliveredAt: Double?
    var ackedAt: Double?
    var deadAt: Double? = nil
    var deadReason: String? = nil
    var inReplyTo: Int64?
    var broadcast: Bool
    var redelivered: Bool

    init(id: Int64?, sender: String, recipient: String, body: String, sentAt: Double, deliveredAt: Double?,
         ackedAt: Double?, inReplyTo: Int64?, broadcast: Bool, redelivered: Bool) {
        self.id = id; self.sender = sender; self.recipient = recipient; self.body = body; self.sentAt = sentAt
        self.deliveredAt = deliveredAt; self.ackedAt = ackedAt; self.inReplyTo = inReplyTo
        self.broadcast = broadcast; self.redelivered = redelivered
    }

    init(row: Row) {
        id = row["id"]
        sender = row["sender"]
        recipient = row["recipient"]
        body = row["body"]
        sentAt = row["sent_at"]
        deliveredAt = row["delivered_at"]
        ackedAt = row["acked_at"]
        deadAt = row["dead_at"]
        deadReason = row["dead_reason"]
        inReplyTo = row["in_reply_to"]
        broadcast = row["broadcast"]
        redelivered = row["redelivered"]
    }

    /// Inserts the row and sets its id.
    mutating func insert(_ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO message (sender, recipient, body, sent_at, delivered_at, acked_at, in_reply_to, broadcast, redelivered)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [sender, recipient, body, sentAt, deliveredAt, ackedAt, inReplyTo, broadcast, redelivered])
        id = db.lastInsertedRowID
    }

    static func fetchOne(_ db: Database, id: Int64) throws -> MessageRow? {
        try fetchOne(db.cachedStatement(sql: "SELECT * FROM message WHERE id = ?"), arguments: [id])
    }

    var lifecycle: MessageLifecycle {
        MessageLifecycle(state: MessageState(deliveredAt: deliveredAt, ackedAt: ackedAt, deadAt: deadAt), redelivered: redelivered)
    }

    var view: MessageView {
        MessageView(id: id ?? 0, from: sender, to: recipient, body: body, sentAt: sentAt,
                    deliveredAt: deliveredAt, ackedAt: ackedAt, inReplyTo: inReplyTo,
                    broadcast: broadcast, redelivered: redelivered, state: lifecycle.state, deadReason: deadReason)
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

    public init(name: String, createdAt: Double, destroyedAt: Double?) {
        self.name = name; self.createdAt = createdAt; self.destroyedAt = destroyedAt
    }
}

/// An agent with its inbox counters, for `list`.
public struct AgentCounts: Sendable, Equatable {
    public var record: AgentRecord
    public var unread: Int
    public var inflight: Int
    /// Dead-lettered messages still within retention.
    public var dead: Int

    public init(record: AgentRecord, unread: Int, inflight: Int, dead: Int) {
        self.record = record; self.unread = unread; self.inflight = inflight; self.dead = dead
    }
}

// The wire's states are stored as their raw strings. A string this build does not know (a database a
// newer hive wrote) reads as a closed state, never as a crash: GRDB stops the process on a value that does
// not convert, and these rows are read on every dashboard poll.
extension ApprovalState: DatabaseValueConvertible {
    public static func fromDatabaseValue(_ v: DatabaseValue) -> ApprovalState? { String.fromDatabaseValue(v).map { .init(rawValue: $0) ?? .failed } }
}
extension ApprovalKind: DatabaseValueConvertible {
    /// An unknown kind is carried out as a commit to deploy, which fails for want of one: the approval ends `failed`.
    public static func fromDatabaseValue(_ v: DatabaseValue) -> ApprovalKind? { String.fromDatabaseValue(v).map { .init(rawValue: $0) ?? .applyCommit } }
}
extension QuestionState: DatabaseValueConvertible {
    public static func fromDatabaseValue(_ v: DatabaseValue) -> QuestionState? { String.fromDatabaseValue(v).map { .init(rawValue: $0) ?? .expired } }
}
extension ReminderState: DatabaseValueConvertible {
    public static func fromDatabaseValue(_ v: DatabaseValue) -> ReminderState? { String.fromDatabaseValue(v).map { .init(rawValue: $0) ?? .failed } }
}
