import HiveWire

extension MessageState {
    /// The SQL condition selecting rows in this state. Bulk updates use it so they agree with
    /// ``MessageLifecycle`` row by row.
    public var sqlCondition: String {
        switch self {
        case .pending: return "delivered_at IS NULL AND acked_at IS NULL AND dead_at IS NULL"
        case .delivered: return "delivered_at IS NOT NULL AND acked_at IS NULL AND dead_at IS NULL"
        case .acked: return "acked_at IS NOT NULL"
        case .dead: return "dead_at IS NOT NULL"
        }
    }
}

/// What can happen to a message.
public enum MessageEvent: Sendable, Equatable {
    /// `recv` handed it out.
    case deliver
    /// A turn that consumed it finished.
    case ack
    /// The harness restarted before acking it (`requeue_inflight`).
    case requeue
    /// The harness gave up on it after repeated failed turns.
    case deadLetter
}

/// The message lifecycle as a value: pending → delivered → acked, and delivered → pending again
/// (flagged redelivered) on requeue. No I/O; the broker applies its verdicts to rows.
public struct MessageLifecycle: Sendable, Equatable {
    public private(set) var state: MessageState
    public private(set) var redelivered: Bool

    public init(state: MessageState = .pending, redelivered: Bool = false) {
        self.state = state
        self.redelivered = redelivered
    }

    /// Applies `event`, changing the state when the transition is allowed.
    @discardableResult
    public mutating func apply(_ event: MessageEvent) -> Transition<MessageState> {
        switch (state, event) {
        case (.pending, .deliver):
            state = .delivered
            return .moved(to: .delivered)
        case (.delivered, .ack):
            state = .acked
            return .moved(to: .acked)
        case (.delivered, .requeue):
            state = .pending
            redelivered = true
            return .moved(to: .pending)
        case (.delivered, .deadLetter):
            state = .dead
            return .moved(to: .dead)
        case (.acked, .ack), (.pending, .requeue), (.acked, .requeue), (.dead, .deadLetter), (.dead, .requeue):
            return .unchanged
        case (.pending, .ack):
            return .refused("was never delivered, so no turn can have consumed it")
        case (.delivered, .deliver):
            return .refused("is already delivered and waiting for its ack")
        case (.acked, .deliver):
            return .refused("is already acked")
        case (.dead, .deliver), (.dead, .ack):
            return .refused("was dead-lettered")
        case (.pending, .deadLetter):
            return .refused("was never delivered, so no turn can have failed on it")
        case (.acked, .deadLetter):
            return .refused("is already acked")
        }
    }
}
