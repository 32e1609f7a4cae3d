/// Where a request for the operator's approval is in its life.
public enum ApprovalState: String, Sendable, Equatable, CaseIterable {
    /// Waiting for the operator.
    case pending
    /// Approved; core is carrying it out (seeding, or validate → render → restart).
    case approved
    /// The operator said no.
    case denied
    /// Carried out: the config repo is seeded, or the commit runs.
    case deployed
    /// Approved but could not be carried out; whatever ran before still runs.
    case failed

    public var isFinal: Bool { self == .denied || self == .deployed || self == .failed }
}

public enum ApprovalKind: String, Sendable, Equatable, CaseIterable {
    /// Seed a new agent's proposed config repo from the template.
    case initConfig = "init_config"
    /// Deploy a commit of an agent's proposed config repo.
    case applyCommit = "apply_commit"
}

/// What can happen to an approval.
public enum ApprovalEvent: Sendable, Equatable {
    case approve
    case deny
    case succeed
    case fail
}

/// The approval state machine, without I/O: which event is allowed in which state.
public enum ApprovalLifecycle {
    /// The state after `event`, or nil when the event does not apply (e.g. approving twice).
    public static func next(_ state: ApprovalState, on event: ApprovalEvent) -> ApprovalState? {
        switch (state, event) {
        case (.pending, .approve): return .approved
        case (.pending, .deny): return .denied
        case (.approved, .succeed): return .deployed
        case (.approved, .fail): return .failed
        default: return nil
        }
    }
}
