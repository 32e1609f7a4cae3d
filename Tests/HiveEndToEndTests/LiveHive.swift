import Foundation
import HiveClient
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// A real `hive core` process on a temporary root, for end-to-end tests. Whatever a test leaves
/// running is killed when the value goes away.
final class LiveHive: @unchecked Sendable {
    let dir: URL
    var root: URL { dir.appending(path: "root") }
    var runDir: URL { dir.appending(path: "run") }
    private(set) var process: Process?
    /// Where this hive's core claims its uid block (see UIDRange).
    var uidRegistry: URL
    private var logIndex = 0
    /// `hive agent` processes a test started; killed with the hive.
    var agents: [Process] = []

    /// The `hive` binary: `$HIVE_BIN`, else the one built next to this test bundle.
    static var binary: URL {
        if let env = ProcessInfo.processInfo.environment["HIVE_BIN"] { return URL(filePath: env) }
        let exe = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appending(path: "hive")
    }

    init() throws {
        // Short on purpose: socket paths must stay under 108 bytes.
        var template = Array("/tmp/hv-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw HiveClientError.protocolError("mkdtemp failed") }
        dir = URL(filePath: String(cString: made))
        uidRegistry = dir.appending(path: "uid-ranges")
        // Readable by the unprivileged uids bubblewrap cages run as (scripts and fixtures live here).
        chmod(made, 0o755)
    }

    deinit {
        for a in agents where a.isRunning { kill(a.processIdentifier, SIGKILL); a.waitUntilGone() }
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilGone() }
        // HIVE_TEST_KEEP=1 keeps the temp dir (core's and the harnesses' logs) for a look after a failure.
        if ProcessInfo.processInfo.environment["HIVE_TEST_KEEP"] != "1" { try? FileManager.default.removeItem(at: dir) }
    }

    var adminSocket: String { runDir.appending(path: "host.sock").path }
    func agentSocket(_ name: String) -> String { runDir.appending(path: "agents/\(name)/mcp.sock").path }

    /// Starts `hive core` and waits until its admin socket answers.
    func start(extra: [String] = [], cage: String = "none", environment: [String: String]? = nil) async throws {
        // Cages get an allow-list of core's environment: the stand-in's settings travel as --agent-env.
        let fake = (environment ?? [:]).filter { $0.key.hasPrefix("FAKE_CLAUDE_") }.sorted { $0.key < $1.key }
        try await startCore(["core", "--root", root.path, "--run-dir", runDir.path, "--cage", cage, "--log-level", "debug",
                             "--forge-listen", "127.0.0.1:0"] + fake.flatMap { ["--agent-env", "\($0.key)=\($0.value)"] } + extra,
                            environment: environment)
    }

    /// Starts core as `executable args` (by default the built `hive`) and waits until its admin socket answers.
    func startCore(_ args: [String], executable: URL? = nil, environment: [String: String]? = nil) async throws {
        let p = try launch(args, environment: environment, executable: executable)
        process = p
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if !p.isRunning { throw HiveClientError.protocolError("hive core exited early: \(lastLog())") }
            if let c = try? HiveConnection(path: adminSocket), (try? await c.call(ListCommand())) != nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HiveClientError.protocolError("hive core did not come up: \(lastLog())")
    }

    /// Launches `hive` with `args`, stdout and stderr going to a log file in the temp dir.
    func launch(_ args: [String], environment: [String: String]? = nil, executable: URL? = nil) throws -> Process {
        logIndex += 1
        let log = dir.appending(path: "hive-\(logIndex).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = executable ?? Self.binary
        p.arguments = args
        // Each test hive claims its agents' uid block in a registry of its own (not the host's), unless
        // a test shares one between hives.
        var env = environment ?? ProcessInfo.processInfo.environment
        if env["HIVE_UID_REGISTRY"] == nil { env["HIVE_UID_REGISTRY"] = uidRegistry.path }
        p.environment = env
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    func lastLog() -> String {
        (try? String(contentsOf: dir.appending(path: "hive-\(logIndex).log"), encoding: .utf8)) ?? ""
    }

    /// SIGTERM, then waits (up to `timeout`) and returns the exit status, or nil if it would not stop.
    func terminate(timeout: Duration = .seconds(10)) async -> Int32? {
        guard let p = process else { return nil }
        kill(p.processIdentifier, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while p.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilGone(); return nil }
        process = nil
        return p.terminationStatus
    }

    /// `kill -9`: no chance to clean up.
    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilGone()
        process = nil
    }

    func admin() throws -> HiveConnection { try HiveConnection(path: adminSocket) }
    func agent(_ name: String) throws -> HiveConnection { try HiveConnection(path: agentSocket(name)) }

    @discardableResult
    func spawn(_ name: String) async throws -> SpawnCommand.Reply { try await admin().call(SpawnCommand(name: name)) }

    /// Runs a CLI verb against this hive (via HIVE_RUN_DIR) and returns its status and output.
    func cli(_ args: [String], executable: URL? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = executable ?? Self.binary
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["HIVE_RUN_DIR"] = runDir.path
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilGone()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

extension HiveConnection {
    /// Sends a raw line and returns the parsed response object.
    func raw(_ line: String) async throws -> [String: Any] {
        let data = try await roundTrip(Data((line + "\n").utf8))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }
}
