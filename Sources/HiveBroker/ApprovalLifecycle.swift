import HiveWire

/// What can happen to an approval.
public enum ApprovalEvent: Sendable, Equatable {
    case approve
    case deny
    case succeed
    case fail
}

/// The approval state machine, without I/O: which event is allowed in which state.
public enum ApprovalLifecycle {
    /// What `event` does to an approval in `state`.
    public static func apply(_ event: ApprovalEvent, to state: ApprovalState) -> Transition<ApprovalState> {
        switch (state, event) {
        case (.pending, .approve): return .moved(to: .approved)
        case (.pending, .deny): return .moved(to: .denied)
        case (.approved, .succeed): return .moved(to: .deployed)
        case (.approved, .fail): return .moved(to: .failed)
        case (.pending, _): return .refused("is still waiting for the operator")
        case (.approved, _): return .refused("is already approved")
        default: return .refused("is already \(state.rawValue)")
        }
    }
}
