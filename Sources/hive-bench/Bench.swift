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

    func run() async throws {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hb-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let core = try await CoreProcess.start(in: dir)
        defer { core.stop() }

        _ = try await core.admin().call(SpawnCommand(name: "bench"))
        let wake = try await wakeLatency(core)
        let sendRate = try await sendThroughput(core)
        core.stop()
        let raw = try rawInsertRate(in: dir, rows: senders * perSender)

        let report = Report(wake: wake, sendRate: sendRate, raw: raw, senders: senders, perSender: perSender, wakes: wakes)
        print(report.markdown)
        if let write {
            let handle = try FileHandle(forWritingTo: URL(filePath: write))
            handle.seekToEndOfFile()
            handle.write(Data(("\n" + report.markdown).utf8))
            try handle.close()
        }
    }

    /// (a) send → a parked `recv` returns, one message at a time.
    func wakeLatency(_ core: CoreProcess) async throws -> [Double] {
        let receiver = try core.agent("bench")
        let sender = try core.agent("manager")
        var samples: [Double] = []
        samples.reserveCapacity(wakes)
        for i in 0..<(wakes + 50) {
            async let got = receiver.call(RecvCommand(waitSeconds: 10, max: 1))
            // Give the recv time to park, so we measure a wake and not a race.
            try await Task.sleep(for: .milliseconds(2))
            let start = ContinuousClock.now
            _ = try await sender.call(SendCommand(to: "bench", body: "wake \(i)"))
            let messages = try await got.messages
            let elapsed = ContinuousClock.now - start
            guard messages.first?.body == "wake \(i)" else { throw ValidationError("wrong message woke the receiver") }
            _ = try await receiver.call(AckTurnCommand(ids: messages.map(\.id)))
            if i >= 50 { samples.append(elapsed.seconds * 1000) } // first 50 are warm-up
        }
        return samples.sorted()
    }

    /// (b) `senders` connections sending concurrently; messages per second until the last ok.
    func sendThroughput(_ core: CoreProcess) async throws -> Double {
        let connections = try (0..<senders).map { _ in try core.admin() }
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, c) in connections.enumerated() {
                let count = perSender
                group.addTask {
                    for i in 0..<count { _ = try await c.call(SendCommand(to: "bench", body: "sender \(n) message \(i)")) }
                }
            }
            try await group.waitForAll()
        }
        return Double(senders * perSender) / (ContinuousClock.now - start).seconds
    }

    /// The same rows inserted straight into a broker-schema database at the same synchronous level.
    func rawInsertRate(in dir: URL, rows: Int) throws -> (perRowCommit: Double, oneTransaction: Double) {
        func table(_ name: String) throws -> DatabaseQueue {
            let path = dir.appending(path: name).path
            _ = try Broker(path: path) // creates the broker's exact schema
            let queue = try DatabaseQueue(path: path)
            try queue.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = \(Broker.synchronous)")
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
    let wake: [Double]
    let sendRate: Double
    let raw: (perRowCommit: Double, oneTransaction: Double)
    let senders: Int
    let perSender: Int
    let wakes: Int

    func pct(_ p: Double) -> Double { wake[min(wake.count - 1, Int(Double(wake.count) * p))] }

    var markdown: String {
        let host = ProcessInfo.processInfo
        let date = ISO8601DateFormatter().string(from: Date())
        let ratio = sendRate / raw.perRowCommit * 100
        return """
            ## Spine run of \(date)

            Machine: \(host.processorCount) cores, \(host.physicalMemory / 1_073_741_824) GiB, \(host.operatingSystemVersionString); release build; broker `synchronous = \(Broker.synchronous)`.

            **(a) Wake latency**, send → parked `recv` returns, \(wake.count) sends (after 50 warm-up), one at a time:

            | p50 | p90 | p99 | max |
            |---|---|---|---|
            | \(f(pct(0.5))) ms | \(f(pct(0.9))) ms | \(f(pct(0.99))) ms | \(f(wake.last ?? 0)) ms |

            **(b) Durable send throughput**, \(senders) concurrent senders × \(perSender) sends over the admin socket, each answered after its commit:

            | what | messages/s | vs raw per-row loop |
            |---|---|---|
            | hive core, \(senders) senders | \(Int(sendRate)) | \(f(ratio)) % |
            | raw SQLite loop, one commit per row (same rows, schema, synchronous) | \(Int(raw.perRowCommit)) | 100 % |
            | raw SQLite, all rows in one transaction (ceiling, not durable per row) | \(Int(raw.oneTransaction)) | \(f(raw.oneTransaction / raw.perRowCommit * 100)) % |

            """
    }

    func f(_ x: Double) -> String { String(format: "%.3g", x) }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A `hive core` child process from the same build directory.
final class CoreProcess: @unchecked Sendable {
    let process: Process
    let runDir: URL

    static func start(in dir: URL) async throws -> CoreProcess {
        let hive = URL(filePath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appending(path: "hive")
        let p = Process()
        p.executableURL = hive
        p.arguments = ["core", "--root", dir.appending(path: "root").path, "--run-dir", dir.appending(path: "run").path, "--log-level", "warning"]
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
