import Foundation
import HiveBroker
import HiveHost
import Synchronization

/// The threads the PostgreSQL store's async work runs on, and the bridge from core's blocking calls to it.
///
/// Core's store protocols are synchronous: core serves each connection on a thread of its own and a parked
/// `recv` blocks that thread (measured: 40 µs a round trip against 134 µs for the async version;
/// docs/benchmarks.md). postgres-nio is async. A blocking call therefore starts a task and waits for it;
/// the task prefers these threads (a task executor), never Swift's cooperative pool, because some callers
/// (the reminder scheduler, the dashboard's handlers) block on a cooperative thread themselves, and two of
/// them (this machine's pool width) would leave no thread for the work they wait for. Written by hand:
/// no mirrored package offers a task executor on threads of its own (NIO's is a test utility).
final class PostgresThreads: TaskExecutor, @unchecked Sendable {
    static let shared = PostgresThreads(count: 2)

    private let lock = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0

    init(count: Int) {
        for n in 0..<count {
            let thread = Thread { [unowned self] in self.loop() }
            thread.name = "hive-postgres-\(n)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.lock()
        jobs.append(job)
        lock.signal()
        lock.unlock()
    }

    private func loop() {
        while true {
            lock.lock()
            while head == jobs.count { lock.wait() }
            let job = jobs[head]
            head += 1
            if head > 1024, head * 2 > jobs.count { jobs.removeFirst(head); head = 0 }
            lock.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Runs `body` on these threads and blocks the calling thread until it is done. Errors come out as
    /// ``BrokerError``s (a storage error carries PostgreSQL's own message) or as the caller's
    /// `RequestError`s.
    static func block<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        try Blocking.run(on: shared, body)
    }
}
