import ArgumentParser
import Foundation
import GRDB
import HiveBroker
import HiveClient
import HiveWire
#if canImport(Glibc)
import Glibc
#endif

/// Rerunnable benchmarks of the spine, against a real `hive core` started from the same build.
/// Run through `scripts/bench`, which builds in release mode first.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hive-bench",
        abstract: "Measure wake latency and durable send throughput of a real hive core.")

    @Option(help: "Sends for the wake-latency run.") var wakes = 3000
    @Option(help: "Concurrent senders for the throughput run.") var senders = 8
    @Option(help: "Sends per sender in the throughput run.") var perSender = 1000
    @Option(help: "Append the results as a markdown section to this file.") var write: String?

    @Option(help: "Synchronous levels to measure: full, normal or both.") var synchronous = "both"

    func run() async throws {
        let modes: [Broker.Synchronous] = synchronous == "both" ? [.full, .normal] : [Broker.Synchronous(rawValue: synchronous.uppercased()) ?? .full]
        var results: [Report.Mode] = []
        for mode in modes {
            let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hb-XXXXXX"))!))
            defer { try? FileManager.default.removeItem(at: dir) }
            let core = try await CoreProcess.start(in: dir, synchronous: mode)
            defer { core.stop() }
            _ = try await core.admin().call(SpawnCommand(name: "bench"))
            let wake = try await wakeLatency(core)
            let sendRate = try await sendThroughput(core)
            core.stop()
            let raw = try rawInsertRate(in: dir, rows: senders * perSender, synchronous: mode)
            results.append(.init(synchronous: mode, wake: wake, sendRate: sendRate, raw: raw))
        }
        let relay = try await relayLatency(hops: 3)
        let report = Report(modes: results, relay: relay, senders: senders, perSender: perSender)
        print(report.markdown)
        if let write {
            let handle = try FileHandle(forWritingTo: URL(filePath: write))
            handle.seekToEndOfFile()
            handle.write(Data(("\n" + report.markdown).utf8))
            try handle.close()
        }
    }

    /// (a) send → a parked `recv` returns, one message at a time. Sender and receiver are plain
    /// threads with blocking connections, as a harness's receive loop is.
    func wakeLatency(_ core: CoreProcess) async throws -> [Double] {
        let receiver = try core.agent("bench")
        let sender = try core.agent("manager")
        let total = wakes + 50
        return try await onThreads(1) { _ in
            let woke = DispatchSemaphore(value: 0)
            let clock = ContinuousClock()
            let arrivals = Box<[ContinuousClock.Instant]>([])
            let failure = Box<(any Error)?>(nil)
            let thread = Thread {
                do {
                    for _ in 0..<total {
                        let got = try receiver.callBlocking(RecvCommand(waitSeconds: 10, max: 1))
                        arrivals.value.append(clock.now)
                        _ = try receiver.callBlocking(AckTurnCommand(ids: got.messages.map(\.id)))
                        woke.signal()
                    }
                } catch {
                    failure.value = error
                    woke.signal()
                }
            }
            thread.start()
            var samples: [Double] = []
            for i in 0..<total {
                // Give the recv time to park, so we measure a wake and not a race.
                Thread.sleep(forTimeInterval: 0.002)
                let start = clock.now
                _ = try sender.callBlocking(SendCommand(to: "bench", body: "wake \(i)"))
                woke.wait()
                if let error = failure.value { throw error }
                if i >= 50 { samples.append((arrivals.value[i] - start).seconds * 1000) } // first 50 warm up
            }
            return samples.sorted()
        }[0]
    }

    /// The floor for (a) on this machine: a byte relayed through `hops` threads over socket pairs, with
    /// the same pause before each round, no JSON and no database.
    func relayLatency(hops: Int) async throws -> [Double] {
        let total = wakes + 50
        return try await onThreads(1) { _ in
            var pairs: [[Int32]] = []
            for _ in 0...hops {
                var p: [Int32] = [0, 0]
                guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &p) == 0 else { throw ValidationError("socketpair failed") }
                pairs.append(p)
            }
            defer { for p in pairs { close(p[0]); close(p[1]) } }
            for h in 0..<hops {
                let from = pairs[h][1], to = pairs[h + 1][0]
                Thread {
                    var b: UInt8 = 0
                    while Glibc.read(from, &b, 1) == 1 { _ = Glibc.write(to, &b, 1) }
                }.start()
            }
            let clock = ContinuousClock()
            var samples: [Double] = []
            var b: UInt8 = 1
            for i in 0..<total {
                Thread.sleep(forTimeInterval: 0.002)
                let start = clock.now
                _ = Glibc.write(pairs[0][0], &b, 1)
                _ = Glibc.read(pairs[hops][1], &b, 1)
                if i >= 50 { samples.append((clock.now - start).seconds * 1000) }
            }
            shutdown(pairs[0][0], Int32(SHUT_RDWR))
            return samples.sorted()
        }[0]
    }

    /// (b) `senders` connections sending concurrently, one thread each; messages per second until the
    /// last ok.
    func sendThroughput(_ core: CoreProcess) async throws -> Double {
        let connections = try (0..<senders).map { _ in try core.admin() }
        let count = perSender
        let start = ContinuousClock.now
        _ = try await onThreads(senders) { n in
            for i in 0..<count { _ = try connections[n].callBlocking(SendCommand(to: "bench", body: "sender \(n) message \(i)")) }
        }
        return Double(senders * perSender) / (ContinuousClock.now - start).seconds
    }

    /// The same rows inserted straight into a broker-schema database at the same synchronous level.
    func rawInsertRate(in dir: URL, rows: Int, synchronous: Broker.Synchronous) throws -> (perRowCommit: Double, oneTransaction: Double) {
        func table(_ name: String) throws -> DatabaseQueue {
            let path = dir.appending(path: name).path
            _ = try Broker(path: path) // creates the broker's exact schema
            let queue = try DatabaseQueue(path: path)
            try queue.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue)")
            }
            return queue
        }
        let insert = "INSERT INTO message (sender, recipient, body, sent_at, broadcast, redelivered) VALUES (?, ?, ?, ?, 0, 0)"

        let perRow = try table("raw-per-row.sqlite")
        var start = ContinuousClock.now
        for i in 0..<rows {
            try perRow.write { db in
                try db.cachedStatement(sql: insert).execute(arguments: ["operator", "bench", "sender 0 message \(i)", Date().timeIntervalSince1970])
            }
        }
        let perRowRate = Double(rows) / (ContinuousClock.now - start).seconds

        let single = try table("raw-one-tx.sqlite")
        start = ContinuousClock.now
        try single.write { db in
            let statement = try db.cachedStatement(sql: insert)
            for i in 0..<rows {
                try statement.execute(arguments: ["operator", "bench", "sender 0 message \(i)", Date().timeIntervalSince1970])
            }
        }
        return (perRowRate, Double(rows) / (ContinuousClock.now - start).seconds)
    }
}

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

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A `hive core` child process from the same build directory.
final class CoreProcess: @unchecked Sendable {
    let process: Process
    let runDir: URL

    static func start(in dir: URL, synchronous: Broker.Synchronous) async throws -> CoreProcess {
        let hive = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appending(path: "hive")
        let p = Process()
        p.executableURL = hive
        p.arguments = ["core", "--root", dir.appending(path: "root").path, "--run-dir", dir.appending(path: "run").path, "--log-level", "warning",
                       "--synchronous", synchronous.rawValue.lowercased()]
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
        process.waitUntilExit()
    }
}
