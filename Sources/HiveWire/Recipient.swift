/// Who a message is addressed to, as written on the wire: an agent, the operator, or everyone (`*`).
public enum Recipient: Hashable, Sendable, CustomStringConvertible {
    case agent(AgentName)
    case `operator`
    case broadcast

    /// Parses a `to` field. `manager` is an agent; `operator` and `*` are special.
    public init(_ raw: String) throws(NameError) {
        switch raw {
        case "operator": self = .operator
        case "*": self = .broadcast
        default: self = .agent(try AgentName(raw))
        }
    }

    public var description: String {
        switch self {
        case .agent(let n): return n.rawValue
        case .operator: return "operator"
        case .broadcast: return "*"
        }
    }
}

/// Who sent a message. Never taken from a request: it is the identity of the socket it came in on,
/// or the hive itself (`system`) for notices such as a crash or a dead letter.
public enum Sender: Hashable, Sendable, CustomStringConvertible {
    case agent(AgentName)
    case `operator`
    case system
    /// A reminder an agent set for itself, fired by core's scheduler.
    case reminder

    public var description: String {
        switch self {
        case .agent(let n): return n.rawValue
        case .operator: return "operator"
        case .system: return "system"
        case .reminder: return "reminder"
        }
    }
}
