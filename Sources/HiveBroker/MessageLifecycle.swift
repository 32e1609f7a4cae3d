/// Where a message is in its life: waiting, handed to the harness, or finished with.
public enum MessageState: String, Sendable, Equatable, CaseIterable {
    /// Stored, not yet handed out by `recv`.
    case pending
    /// Handed out by `recv`; a turn is (or was) working on it. Not yet acked.
    case delivered
    /// A turn that consumed it finished successfully.
    case acked
    /// Turns kept failing on it; the harness gave up and recorded why. Never handed out again.
    case dead

    /// Reads the state off a row's timestamps.
    public init(deliveredAt: Double?, ackedAt: Double?, deadAt: Double? = nil) {
        if deadAt != nil { self = .dead } else if ackedAt != nil { self = .acked } else if deliveredAt != nil { self = .delivered } else { self = .pending }
    }

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

    /// The result of applying an event.
    public enum Outcome: Sendable, Equatable {
        /// The state changed; write it.
        case moved(to: MessageState)
        /// Nothing to do, and that is fine (acking twice, requeueing something not in flight).
        case unchanged
        /// The event makes no sense in this state; the reason is for the caller's reply.
        case refused(String)
    }

    /// Applies `event`, changing the state when the transition is allowed.
    @discardableResult
    public mutating func apply(_ event: MessageEvent) -> Outcome {
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
