import ArgumentParser
import Foundation
import Synchronization
import GRDB
import HiveBroker
import HiveClient
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

// What the benchmarks share: the report of the spine run, and a real core (and harness) to run against.

struct Report {
    struct Mode {
        let synchronous: Broker.Synchronous
        /// Milliseconds, sorted.
        let wake: [Double]
        let sendRate: Double
        let raw: (perRowCommit: Double, oneTransaction: Double)

        func pct(_ p: Double) -> Double { percentile(wake, p) }
    }
    let modes: [Mode]
    /// Milliseconds, sorted: the thread-relay floor.
    let relay: [Double]
    let senders: Int
    let perSender: Int

    var markdown: String {
        let host = ProcessInfo.processInfo
        let date = ISO8601DateFormatter().string(from: Date())
        var out = """
            ## Spine run of \(date)

            Machine: \(host.processorCount) cores, \(host.physicalMemory / 1_073_741_824) GiB, \(host.operatingSystemVersionString); release build.

            **(a) Wake latency**, send → parked `recv` returns, \(modes.first?.wake.count ?? 0) sends one at a time (after 50 warm-up), measured by the client from the start of `send` to the return of `recv`:

            | synchronous | p50 | p90 | p99 | max |
            |---|---|---|---|---|

            """
        for m in modes {
            out += "| \(m.synchronous.rawValue) | \(f(m.pct(0.5))) ms | \(f(m.pct(0.9))) ms | \(f(m.pct(0.99))) ms | \(f(m.wake.last ?? 0)) ms |\n"
        }
        out += "| floor: a byte relayed through 3 threads over socket pairs, same pauses | \(f(percentile(relay, 0.5))) ms | \(f(percentile(relay, 0.9))) ms | \(f(percentile(relay, 0.99))) ms | \(f(relay.last ?? 0)) ms |\n"
        out += """

            **(b) Durable send throughput**, \(senders) concurrent senders × \(perSender) sends over the admin socket, each answered after its commit, beside raw SQLite loops of the same rows (same schema, same synchronous level) in the same run:

            | synchronous | hive core, \(senders) senders | raw loop, one commit per row | ratio | raw, one transaction (ceiling, not durable per row) |
            |---|---|---|---|---|

            """
        for m in modes {
            out += "| \(m.synchronous.rawValue) | \(Int(m.sendRate))/s | \(Int(m.raw.perRowCommit))/s | \(f(m.sendRate / m.raw.perRowCommit * 100)) % | \(Int(m.raw.oneTransaction))/s |\n"
        }
        return out
    }

    func f(_ x: Double) -> String { String(format: "%.3g", x) }
}

/// The `p` quantile of sorted samples.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

/// A mutable cell shared by benchmark threads (each cell has one writer at a time).
final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

/// Runs `body(i)` on `count` threads at once and returns their results in order.
func onThreads<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            let group = DispatchGroup()
            let results = Box<[Result<T, any Error>?]>(Array(repeating: nil, count: count))
            let lock = NSLock()
            for i in 0..<count {
                group.enter()
                Thread {
                    let r = Result { try body(i) }
                    lock.withLock { results.value[i] = r }
                    group.leave()
                }.start()
            }
            group.wait()
            continuation.resume(with: Result { try results.value.map { try $0!.get() } })
        }.start()
    }
}

/// A `hive core` child process from the same build directory.
final class CoreProcess: @unchecked Sendable {
    let process: Process
    let runDir: URL
    var hive: URL { process.executableURL! }

    /// Starts `hive agent` for `name` (not caged) with `environment`, and waits (up to 10 s) until it is idle.
    func startHarness(_ name: String = "bench", root: URL, environment: [String: String], extra: [String] = []) async throws -> Process {
        let harness = Process()
        harness.executableURL = hive
        harness.arguments = ["agent", "--name", name, "--root", root.path, "--run-dir", runDir.path, "--log-level", "warning"] + extra
        harness.environment = environment
        try harness.run()
        let admin = try admin()
        for _ in 0..<200 where try await admin.call(ListCommand()).agents.first(where: { $0.name == name })?.state != .idle {
            try await Task.sleep(for: .milliseconds(50))
        }
        return harness
    }

    /// Waits until `name` has nothing unread and nothing in flight.
    func waitDrained(_ name: String = "bench") async throws {
        let admin = try admin()
        while true {
            let row = try await admin.call(ListCommand()).agents.first { $0.name == name }
            if row?.unread == 0 && row?.inflight == 0 { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static func start(in dir: URL, synchronous: Broker.Synchronous, extra: [String] = []) async throws -> CoreProcess {
        let hive = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appending(path: "hive")
        let p = Process()
        p.executableURL = hive
        p.arguments = ["core", "--root", dir.appending(path: "root").path, "--run-dir", dir.appending(path: "run").path, "--log-level", "warning",
                       // The spine's own speed: agents' send rate limits off.
                       "--synchronous", synchronous.rawValue.lowercased(), "--send-rate", "0"] + extra
        // A throwaway hive claims its uid block in its own registry, not the host's.
        p.environment = ProcessInfo.processInfo.environment.merging(["HIVE_UID_REGISTRY": dir.appending(path: "uid-ranges").path]) { $1 }
        try p.run()
        let core = CoreProcess(process: p, runDir: dir.appending(path: "run"))
        for _ in 0..<600 {
            if let c = try? core.admin(), (try? await c.call(ListCommand())) != nil { return core }
            try await Task.sleep(for: .milliseconds(50))
        }
        core.stop()
        throw ValidationError("hive core at \(hive.path) did not start")
    }

    init(process: Process, runDir: URL) { self.process = process; self.runDir = runDir }

    func admin() throws -> HiveConnection { try HiveConnection(path: runDir.appending(path: "host.sock").path) }
    func agent(_ name: String) throws -> HiveConnection { try HiveConnection(path: runDir.appending(path: "agents/\(name)/mcp.sock").path) }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilGone()
    }
}
