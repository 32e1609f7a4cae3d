import HiveWire

/// A refusal by the broker, phrased for the person or agent who made the request.
public enum BrokerError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyBody
    case nulInBody
    case bodyTooLong(bytes: Int)
    case badName(NameError)
    case unknownRecipient(String)
    case destroyedRecipient(String)
    case nobodyToBroadcastTo
    case unknownAgent(String)
    case alreadyExists(String)
    case tombstoneExists(String)
    case managerIsPermanent
    case tooManyIDs(Int)
    case storage(String)
    case reminderCap(Int)
    case notATombstone(String)
    case noSuchReminder(Int64, state: String?)
    case noSuchApproval(Int64)
    case approvalNotOpen(Int64, state: String)
    case noSuchQuestion(Int64)
    case questionNotOpen(Int64, state: String)
    case notYourQuestion(Int64, to: String)
    case questionCap(Int)
    case uidsUsedUp(ClosedRange<Int>)

    public var description: String {
        switch self {
        case .emptyBody:
            return "message body is empty"
        case .nulInBody:
            return "message body contains a NUL character (U+0000), which the hive does not store; remove it"
        case .bodyTooLong(let bytes):
            return "message body is \(bytes) bytes; the limit is \(WireLimits.maxBodyBytes) bytes (UTF-8). Put long content in a file under your state dir or /shared and send its path"
        case .badName(let e):
            return e.description
        case .unknownRecipient(let r):
            return "unknown recipient '\(r)': send to a registered agent, 'manager', 'operator' or '*'"
        case .destroyedRecipient(let r):
            return "agent '\(r)' has been destroyed; its tombstone takes no new messages"
        case .nobodyToBroadcastTo:
            return "'*' reaches every other registered agent, and there are none"
        case .unknownAgent(let n):
            return "no agent named '\(n)'"
        case .alreadyExists(let n):
            return "agent '\(n)' already exists"
        case .tombstoneExists(let n):
            return "agent '\(n)' was destroyed and its tombstone is kept; purge it first (hive destroy \(n) --purge) to reuse the name"
        case .uidsUsedUp(let range):
            return "this hive's agent uid block \(range.lowerBound)…\(range.upperBound) is used up (uids are never reused); move the hive to a new root"
        case .managerIsPermanent:
            return "the manager is part of the hive and cannot be destroyed"
        case .tooManyIDs(let n):
            return "\(n) ids in one request; the limit is \(WireLimits.maxAckIDs)"
        case .notATombstone(let n):
            return "agent '\(n)' is not destroyed; only a tombstone can be revived"
        case .reminderCap(let cap):
            return "reminder refused: \(cap) reminders are already pending for you (the per-agent cap); cancel one or wait until some fire"
        case .noSuchReminder(let id, let state):
            return state.map { "reminder \(id) is \($0), not pending" } ?? "no reminder with id \(id)"
        case .noSuchApproval(let id):
            return "no approval with id \(id)"
        case .approvalNotOpen(let id, let state):
            return "approval \(id) is \(state), not pending: nothing to do"
        case .noSuchQuestion(let id):
            return "no question with id \(id)"
        case .questionNotOpen(let id, let state):
            return "question \(id) is \(state), not open: it can no longer be answered"
        case .notYourQuestion(let id, let to):
            return "question \(id) was asked of \(to); only \(to) can answer it"
        case .questionCap(let cap):
            return "question refused: you already have \(cap) open questions; wait for answers or for some to expire"
        case .storage(let what):
            return "the message store failed: \(what)"
        }
    }
}
