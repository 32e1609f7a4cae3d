import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `hive up`'s dashboard: `hive web` as a child, started again whenever it exits while the hive runs
/// (an agent's page server must not be able to take the dashboard away for good). It stops with the
/// hive: its stdin is a pipe from this process, closed on the way out (and by the kernel if this dies).
final class WebSupervisor: Sendable {
    private let arguments: [String]
    /// The lifeline's two ends, raw: Foundation closes a `Pipe`'s child end in the parent after the first
    /// launch, and a second child would then start with its lifeline already cut.
    private let lifeline: (read: Int32, write: Int32)
    private let logger: Logger
    private struct State {
        var process: Process?
        var stopping = false
        var restarts = 0
        var startedAt = ContinuousClock.now
    }
    private let state = Mutex(State())

    init(arguments: [String], logger: Logger) {
        self.arguments = arguments
        self.logger = logger
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        // Neither end leaks into other children (cages): the dashboard gets the read end as its stdin (dup2).
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        lifeline = (fds[0], fds[1])
    }

    func start() {
        let p = Process()
        p.executableURL = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath()
        p.arguments = arguments
        p.standardInput = FileHandle(fileDescriptor: lifeline.read, closeOnDealloc: false)
        p.terminationHandler = { [weak self] ended in self?.ended(ended) }
        let go = state.withLock { s -> Bool in
            guard !s.stopping else { return false }
            s.process = p
            s.startedAt = .now
            return true
        }
        guard go else { return }
        do { try p.run() } catch {
            logger.error("could not start the dashboard (hive web): \(error); trying again in 5 s")
            DispatchQueue.global().asyncAfter(deadline: .now() + 5) { [weak self] in self?.start() }
        }
    }

    /// Restarts after a delay that grows while it keeps dying young (1 s, doubling to 30 s).
    private func ended(_ process: Process) {
        let delay = state.withLock { s -> Double? in
            guard !s.stopping, s.process === process else { return nil }
            s.restarts = ContinuousClock.now - s.startedAt > .seconds(60) ? 0 : s.restarts + 1
            return min(30, pow(2, Double(max(0, s.restarts - 1))))
        }
        guard let delay else { return }
        logger.warning("the dashboard (hive web) exited with status \(process.terminationStatus); starting it again in \(Int(delay)) s")
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak self] in self?.start() }
    }

    func stop() {
        let process = state.withLock { s -> Process? in
            s.stopping = true
            return s.process
        }
        close(lifeline.write)
        if let process, process.isRunning { kill(process.processIdentifier, SIGTERM); process.waitUntilGone() }
    }
}
