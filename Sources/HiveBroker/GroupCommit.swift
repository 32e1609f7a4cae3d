import Foundation
import HiveMetrics

/// Coalesces concurrent writes into shared transactions ("group commit"), leader/follower style.
///
/// With `synchronous = FULL` every commit costs one fsync of the WAL. The first caller to find no
/// commit in progress becomes the leader and commits everything queued so far in one transaction;
/// callers arriving meanwhile wait and are carried by the next one. Each caller returns only after
/// the transaction holding its job has committed. Callers block their thread: the broker is driven by
/// one thread per connection (see `LineServer`).
public final class GroupCommit<Job: Sendable, Result: Sendable>: @unchecked Sendable {
    public typealias Process = ([Job]) throws -> [Result]

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [(ticket: UInt64, job: Job)] = []
    private var done: [UInt64: Swift.Result<Result, any Error>] = [:]
    private var nextTicket: UInt64 = 0
    private var leading = false

    private let process: Process
    private let maxBatch: Int
    /// The histogram each batch's commit time goes to.
    private let metric: String

    /// `process` runs one batch in one transaction and returns one result per job, in order.
    public init(maxBatch: Int = 256, metric: String = HiveMetrics.Name.sqliteCommit, process: @escaping Process) {
        self.process = process
        self.maxBatch = maxBatch
        self.metric = metric
    }

    /// Queues `job` and returns its result once the batch that carried it has committed.
    public func submit(_ job: Job) throws -> Result {
        condition.lock()
        defer { condition.unlock() }
        nextTicket += 1
        let ticket = nextTicket
        queue.append((ticket, job))
        while true {
            if let result = done.removeValue(forKey: ticket) { return try result.get() }
            if leading {
                condition.wait()
                continue
            }
            leading = true
            let batch = Array(queue.prefix(maxBatch))
            queue.removeFirst(batch.count)
            condition.unlock()
            let outcome = Swift.Result { try HiveMetrics.time(metric) { try process(batch.map(\.job)) } }
            condition.lock()
            switch outcome {
            case .success(let results):
                for (entry, result) in zip(batch, results) { done[entry.ticket] = .success(result) }
            case .failure(let error):
                for entry in batch { done[entry.ticket] = .failure(error) }
            }
            leading = false
            condition.broadcast()
        }
    }
}
