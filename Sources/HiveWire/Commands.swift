import Foundation

/// One request kind on a hive socket: a Codable body tagged on the wire by `cmd`, with its reply type.
public protocol HiveCommand: Codable, Sendable, Equatable {
    associatedtype Reply: Codable & Sendable
    /// The wire tag, snake_case.
    static var cmd: String { get }
}

/// A message as the sockets show it. `recv`, `recent` and `inbox` all return this shape.
public struct MessageView: Codable, Sendable, Equatable {
    public var id: Int64
    public var from: String
    public var to: String
    public var body: String
    /// Unix seconds.
    public var sentAt: Double
    @Nullable public var deliveredAt: Double?
    @Nullable public var ackedAt: Double?
    @Nullable public var inReplyTo: Int64?
    /// This copy was one of a `*` send; it may need no action from the recipient.
    public var broadcast: Bool
    /// This message was handed out before, put back by `requeue_inflight`, and may already be handled.
    public var redelivered: Bool
    public var state: MessageState
    /// Why the harness gave up on it, for a dead letter.
    @Nullable public var deadReason: String?

    public init(id: Int64, from: String, to: String, body: String, sentAt: Double, deliveredAt: Double?,
                ackedAt: Double?, inReplyTo: Int64?, broadcast: Bool, redelivered: Bool, state: MessageState,
                deadReason: String? = nil) {
        self.id = id; self.from = from; self.to = to; self.body = body; self.sentAt = sentAt
        self.deliveredAt = deliveredAt; self.ackedAt = ackedAt; self.inReplyTo = inReplyTo
        self.broadcast = broadcast; self.redelivered = redelivered; self.state = state; self.deadReason = deadReason
    }
}

// MARK: - Commands shared by agent and admin sockets

/// Send a message. The sender is the socket's identity; there is no field to name another.
public struct SendCommand: HiveCommand {
    public static let cmd = "send"
    public var to: String
    public var body: String
    public var inReplyTo: Int64?
    public init(to: String, body: String, inReplyTo: Int64? = nil) { self.to = to; self.body = body; self.inReplyTo = inReplyTo }

    public struct Reply: Codable, Sendable, Equatable {
        /// One id per stored row: one for a direct send, one per recipient for `*`.
        public var ids: [Int64]
        public var recipients: [String]
        /// The `in_reply_to` that was kept, if any.
        @Nullable public var inReplyTo: Int64?
        /// Why a given `in_reply_to` was dropped (the message was still sent).
        @Nullable public var inReplyToDropped: String?
        public init(ids: [Int64], recipients: [String], inReplyTo: Int64?, inReplyToDropped: String?) {
            self.ids = ids; self.recipients = recipients; self.inReplyTo = inReplyTo; self.inReplyToDropped = inReplyToDropped
        }
    }
}
