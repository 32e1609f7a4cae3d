import Foundation
import Synchronization

/// One thread, alive as long as core, that starts every cage process.
///
/// bubblewrap's `--die-with-parent` is `PR_SET_PDEATHSIG`, which fires when the *thread* that started
/// the child exits, not the process. Cages started from a request's connection thread (or a pooled
/// Dispatch worker) were SIGKILLed as soon as that thread ended. Starting them all from this thread
/// keeps the tie to core's lifetime and nothing shorter. (No library offers this; it is a few lines.)
final class LauncherThread: Sendable {
    private struct Work: @unchecked Sendable { let run: () -> Void }
    private let pending = Mutex<[Work]>([])
    private let wake = DispatchSemaphore(value: 0)

    init() {
        // The thread holds the launcher for good: it is meant to live as long as the process.
        let thread = Thread { [self] in
            while true {
                wake.wait()
                let work = pending.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                work?.run()
            }
        }
        thread.name = "hive-launcher"
        thread.start()
    }

    /// Runs `body` on the launcher thread and returns what it returned (or throws what it threw).
    func run<T>(_ body: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        pending.withLock { $0.append(Work { box.result = Result { try body() }; done.signal() }) }
        wake.signal()
        done.wait()
        return try box.result!.get()
    }
}

/// Carries a result from the launcher thread back to the caller (handed over under a semaphore).
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
