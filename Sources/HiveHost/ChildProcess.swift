import Foundation
import HiveWire
import Synchronization

/// Runs a short-lived helper program (git, mostly) to completion and collects what it printed. Both
/// pipes are drained at once, so a chatty stderr can never stall a large stdout.
public enum ChildProcess {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: Data
        public var text: String { String(decoding: stdout, as: UTF8.self) }
        /// The last line it wrote to stderr, for an error message.
        public var lastError: String { String(decoding: stderr, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "no message" }
    }

    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           directory: URL? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(filePath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let errData = Mutex(Data())
        let errDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errData.withLock { $0 = data }
            errDone.signal()
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let seen = p.waitUntilGone()
        errDone.wait()
        return Output(status: p.isRunning ? (seen ?? -1) : p.terminationStatus, stdout: output, stderr: errData.withLock { $0 })
    }
}

extension Process {
    /// Waits until the process has exited, without `waitUntilExit()`. That one spins the calling
    /// thread's run loop and relies on Foundation delivering the child's end there; off the main thread
    /// it can wait forever (a known swift-corelibs-foundation trap, seen here as a rare hang of a whole
    /// test after hundreds of git runs). `isRunning` is updated by Foundation's own SIGCHLD handling, so
    /// polling it involves no run loop. 2 ms steps: a short-lived child is noticed at once.
    ///
    /// Foundation has also been seen never to notice an exit at all (a test teardown spun for an hour
    /// beside a defunct nginx). So once a second the kernel is asked directly, with `WNOWAIT` so the
    /// child stays Foundation's to reap: an exited child ends the wait, and its status is returned for
    /// the caller that cannot read `terminationStatus` of a process Foundation still thinks is running.
    @discardableResult
    public func waitUntilGone() -> Int32? {
        var polls = 0
        while isRunning {
            usleep(2_000)
            polls += 1
            guard polls % 500 == 0 else { continue }
            var info = siginfo_t()
            if waitid(P_PID, id_t(processIdentifier), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info._sifields._sigchld.si_pid == processIdentifier {
                return isRunning ? info._sifields._sigchld.si_status : terminationStatus
            }
        }
        return terminationStatus
    }
}
