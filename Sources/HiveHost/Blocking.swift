import Foundation
import Synchronization

/// Runs async work to its end from a thread that may block (core's connection threads, cage launches).
/// With `executor`, the work runs there rather than on Swift's cooperative pool: a caller that blocks a
/// cooperative thread must not wait for work that needs one (the PostgreSQL store's threads).
public enum Blocking {
    public static func run<T: Sendable>(on executor: (any TaskExecutor)? = nil, _ body: @escaping @Sendable () async throws -> T) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task(executorPreference: executor) {
            let r: Result<T, any Error>
            do { r = .success(try await body()) } catch { r = .failure(error) }
            result.withLock { $0 = r }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    public static func run(_ body: @escaping @Sendable () async -> Void) {
        _ = try? run { () async throws -> Bool in await body(); return true }
    }
}
