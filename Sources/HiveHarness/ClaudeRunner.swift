import Foundation
import Subprocess
import Synchronization
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// One run of the claude CLI: executable, flags, working directory, environment, prompt.
public struct ClaudeInvocation: Sendable {
    public var executable: String
    public var arguments: [String]
    public var workingDirectory: String
    public var environment: [String: String]
    public var prompt: String
    /// Wall-clock limit for the whole run.
    public var timeout: Duration
}

/// How a run ended at the process level.
public struct ClaudeExit: Sendable, Equatable {
    /// The exit code, or nil when the process was killed by a signal.
    public var status: Int32?
    public var signal: Int32?
    public var timedOut: Bool
    public var cancelled: Bool
}

/// Runs claude in its own process group, prompt on stdin then closed, stdout read line by line.
///
/// Cancellation (the operator's "cancel" or a stopping harness) and the timeout end the whole group:
/// SIGTERM, then SIGKILL after a grace period, so the tools claude started die with it.
public enum ClaudeRunner {
    /// Longest single stdout line accepted; the CLI can write lines of several MB.
    static let maxLineBytes = 64 << 20
    static let grace: Duration = .seconds(5)

    public static func run(_ inv: ClaudeInvocation,
                           onStdout: @escaping @Sendable (Data) -> Void,
                           onStderr: @escaping @Sendable (String) -> Void) async throws -> ClaudeExit {
        var options = PlatformOptions()
        options.processGroupID = 0
        var env: [Subprocess.Environment.Key: String] = [:]
        for (k, v) in inv.environment { env[Subprocess.Environment.Key(stringLiteral: k)] = v }
        let flags = RunFlags()
        let leader = Mutex<pid_t>(0)
        let result = try await Subprocess.run(
            .path(FilePath(inv.executable)), arguments: Arguments(inv.arguments),
            environment: .custom(env), workingDirectory: FilePath(inv.workingDirectory),
            platformOptions: options, input: .inputWriter, output: .sequence, error: .sequence
        ) { execution in
            let pgid = execution.processIdentifier.value
            leader.withLock { $0 = pgid }
            return try await withTaskCancellationHandler {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        // Split on "\n" only: the library's line reader also breaks at U+2028, U+2029 and
                        // U+0085, which JSON leaves unescaped, so text the model wrote could cut a line in
                        // two and smuggle a line of its own making.
                        var lines = NewlineSplitter(maxLineBytes: maxLineBytes)
                        for try await chunk in execution.standardOutput {
                            chunk.withUnsafeBytes { for line in lines.feed($0) { onStdout(line) } }
                        }
                        if let rest = lines.finish() { onStdout(rest) }
                    }
                    group.addTask {
                        for try await line in execution.standardError.strings(bufferingPolicy: .maxLineLength(1 << 20)) {
                            onStderr(line)
                        }
                    }
                    group.addTask {
                        _ = try await execution.standardInputWriter.write(inv.prompt)
                        try await execution.standardInputWriter.finish()
                    }
                    // The watchdog: past the deadline, end the group.
                    let watchdog = Task {
                        try await Task.sleep(for: inv.timeout)
                        flags.timedOut = true
                        await terminateGroup(pgid)
                    }
                    defer { watchdog.cancel() }
                    try await group.waitForAll()
                }
            } onCancel: {
                flags.cancelled = true
                kill(-pgid, SIGTERM) // claude aborts its turn and exits; the kill below takes the rest
            }
        }
        // claude is gone; tools it left behind in its group (servers, background shells) go with it, now,
        // before the group id could be reused.
        let pgid = leader.withLock { $0 }
        if pgid > 0 { kill(-pgid, SIGKILL) }
        var exit = ClaudeExit(status: nil, signal: nil, timedOut: flags.timedOut, cancelled: flags.cancelled)
        switch result.terminationStatus {
        case .exited(let code): exit.status = code
        case .signaled(let sig): exit.signal = sig
        }
        return exit
    }

    /// SIGTERM to the group, SIGKILL after the grace period if anything is left.
    static func terminateGroup(_ pgid: pid_t) async {
        kill(-pgid, SIGTERM)
        try? await Task.sleep(for: grace)
        kill(-pgid, SIGKILL)
    }

}

/// Flags set from the watchdog and the cancellation handler (each written once, read after the run).
private final class RunFlags: @unchecked Sendable {
    private let lock = NSLock()
    private var _timedOut = false
    private var _cancelled = false
    var timedOut: Bool {
        get { lock.withLock { _timedOut } }
        set { lock.withLock { _timedOut = newValue } }
    }
    var cancelled: Bool {
        get { lock.withLock { _cancelled } }
        set { lock.withLock { _cancelled = newValue } }
    }
}

/// Cuts a byte stream into lines at "\n" (and nothing else), each at most `maxLineBytes` (a longer line is
/// cut there, and its rest is dropped up to the next newline).
struct NewlineSplitter {
    let maxLineBytes: Int
    private var pending = Data()
    private var overflowing = false

    init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [Data] {
        var out: [Data] = []
        var start = 0
        for (i, b) in bytes.enumerated() where b == 0x0A {
            append(bytes, start, i)
            if !overflowing || !pending.isEmpty { out.append(pending) }
            pending = Data()
            overflowing = false
            start = i + 1
        }
        append(bytes, start, bytes.count)
        return out
    }

    mutating func finish() -> Data? { pending.isEmpty ? nil : pending }

    private mutating func append(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) {
        guard from < to, !overflowing else { return }
        let room = maxLineBytes - pending.count
        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[from..<min(to, from + room)]))
        if to - from > room { overflowing = true }
    }
}
