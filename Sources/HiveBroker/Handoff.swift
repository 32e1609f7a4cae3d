import GRDB
import HiveWire

/// The parked receivers one group-commit batch has claimed, and the rows it hands to each.
///
/// Rows for a claimed receiver are inserted already delivered, in the same transaction as the send,
/// and handed over once that transaction has committed; on failure every claim is released and its
/// receiver looks again by itself. Used only on the writer queue during the transaction and by the
/// committing task after it, never concurrently, hence `@unchecked Sendable`.
final class Handoff: @unchecked Sendable {
    private let waiters: InboxWaiters
    private var claims: [String: (claim: InboxWaiters.Claim, messages: [MessageView], unread: Int)] = [:]
    private var nobodyWaiting: Set<String> = []

    init(waiters: InboxWaiters) { self.waiters = waiters }

    /// Rows promised to each receiver so far in this batch (kept apart from `messages` until the job
    /// that stores them has committed its savepoint).
    private var promised: [String: Int] = [:]

    /// Whether the next row for `recipient` goes straight to a parked receiver.
    func takes(_ recipient: String) -> Bool {
        if let entry = claims[recipient] {
            guard promised[recipient, default: 0] < entry.claim.max else { return false }
            promised[recipient, default: 0] += 1
            return true
        }
        if nobodyWaiting.contains(recipient) { return false }
        guard let claim = waiters.claim(recipient) else {
            nobodyWaiting.insert(recipient)
            return false
        }
        claims[recipient] = (claim, [], 0)
        promised[recipient] = 1
        return true
    }

    /// Records a row stored as delivered for its claimed receiver.
    func add(_ message: MessageView) {
        claims[message.to]?.messages.append(message)
    }

    /// Counts, inside the transaction, what each claimed receiver still has pending.
    func countUnread(_ db: Database) throws {
        for agent in claims.keys {
            claims[agent]?.unread = try Queries.count(db, .pending, recipient: agent)
        }
    }

    /// After the commit: every claimed receiver gets its rows; one whose rows were rolled back with a
    /// failed job looks again by itself.
    func deliver() {
        for entry in claims.values {
            if entry.messages.isEmpty { entry.claim.release() } else { entry.claim.hand(entry.messages, unread: entry.unread) }
        }
        claims.removeAll()
    }

    /// After a failed transaction: receivers go back to looking for themselves.
    func release() {
        for entry in claims.values { entry.claim.release() }
        claims.removeAll()
    }
}
