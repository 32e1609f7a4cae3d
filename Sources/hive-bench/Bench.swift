import ArgumentParser
import Foundation
import Synchronization
import GRDB
import HiveBroker
import HiveClient
import HiveHost
import HiveWire
import PostgresFixture
#if canImport(Glibc)
import Glibc
#endif

/// Rerunnable benchmarks of the spine, against a real `hive core` started from the same build.
/// Run through `scripts/bench`, which builds in release mode first.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hive-bench",
        abstract: "Measure a real hive core: cage starts, reminder bursts, harness overhead, wake latency and durable send throughput.")

    @Option(help: "Sends for the wake-latency run.") var wakes = 3000
    @Option(help: "Concurrent senders for the throughput run.") var senders = 8
    @Option(help: "Sends per sender in the throughput run.") var perSender = 1000
    @Option(help: "Append the results as a markdown section to this file.") var write: String?

    @Option(help: "Synchronous levels to measure: full, normal or both.") var synchronous = "both"
    @Option(help: "Turns for the harness overhead run (0 skips it).") var turns = 200
    @Option(help: "Reminders falling due at once for the scheduler run (0 skips it).") var reminders = 10_000
    @Flag(inversion: .prefixedNo, help: "Run the spine part (wake latency, send throughput).") var spine = true
    @Option(name: .customLong("dashboard-agents"), help: "Agents for the dashboard run (0 skips it).") var dashboardAgents = 50
    @Option(name: .customLong("dashboard-messages"), help: "Messages in the broker for the dashboard run.") var dashboardMessages = 100_000
    @Option(name: .customLong("dashboard-subscribers"), help: "SSE subscribers for the dashboard's live-feed run.") var dashboardSubscribers = 20
    @Option(name: .customLong("forge-mb"), help: "MB of random data for the forge push/clone run (0 skips it).") var forgeMB = 50
    @Option(name: .customLong("fuzz-lines"), help: "Lines per socket for the socket-fuzzer run (0 skips it).") var fuzzLines = 10_000
    @Option(name: .customLong("gateway-mb"), help: "MB for the gated network's tunnel run (0 skips it).") var gatewayMB = 500
    @Option(name: .customLong("gateway-latency"), help: "Streamed answers each way for the model gateway's first-token latency run (0 skips it).") var gatewayLatencyRuns = 500
    @Flag(name: .customLong("policy-grid"), inversion: .prefixedNo, help: "Run issue 14's session policy grid (planner, seed rule, always continue against the optimum).") var policyGrid = true
    @Option(name: .customLong("gateway-latency-kb"), help: "The request body's size in that run, in KB.") var gatewayLatencyKB = 64
    @Option(name: .customLong("cage-starts"), help: "Starts per cage backend for the cage run (0 skips it).") var cageStarts = 20
    @Option(name: .customLong("search-messages"), help: "Messages in the broker for the search run (0 skips it).") var searchMessages = 1_000_000
    @Option(name: .customLong("search-queries"), help: "Queries per class in the search runs.") var searchQueries = 100
    @Option(name: .customLong("postgres-wakes"), help: "Cross-node wakes for the PostgreSQL run (0 skips it; it needs PostgreSQL's server package).") var postgresWakes = 1000
    @Option(name: .customLong("postgres-sends"), help: "Sends per sender in the PostgreSQL throughput run.") var postgresSends = 900
    @Option(name: .customLong("move-mb"), help: "MiB in the state dir of the agent the hive move run moves (0 skips it; it needs PostgreSQL's server package).") var moveMB = 256
    @Option(name: .customLong("postgres-reminders"), help: "Reminders due at once in the PostgreSQL run (for 100 agents).") var postgresReminders = 10_000
    @Option(name: .customLong("search-events"), help: "Events in one agent's transcript for the transcript search run (0 skips it).") var searchEvents = 200_000
    @Option(name: .customLong("stats-turns"), help: "Turns in turn-stats.sqlite for the stats page run (0 skips it).") var statsTurns = 100_000
    @Option(name: .customLong("claude-runs"), help: "Runs per variant of the real-CLI run (0 skips it; the CLI comes from scripts/fetch-claude or $HIVE_CLAUDE).")
    var claudeRuns = 20

    func run() async throws {
        if claudeRuns > 0 {
            guard let claude = ClaudeExecutable.resolve(environment: ProcessInfo.processInfo.environment) else {
                throw ValidationError("the real-CLI run needs claude: HIVE_CLAUDE=\"$(scripts/fetch-claude)\" (scripts/bench sets it), or --claude-runs 0")
            }
            let report = try await realClaude(claude: claude, runs: claudeRuns)
            print(report)
            if let write { try append(report, to: write) }
        }
        if dashboardAgents > 0 {
            let report = try await dashboard()
            print(report)
            if let write { try append(report, to: write) }
        }
        if searchMessages > 0 {
            let report = try searchRun()
            print(report)
            if let write { try append(report, to: write) }
        }
        if postgresWakes > 0 {
            if PostgresCluster.available {
                let report: String
                do { report = try await postgresRun() } catch { throw ValidationError("the PostgreSQL run failed: \(String(reflecting: error))") }
                print(report)
                if let write { try append(report, to: write) }
            } else {
                print("PostgreSQL run skipped: no server binaries (apt-get install postgresql)")
            }
        }
        if moveMB > 0 {
            if PostgresCluster.available {
                let report = try await moveRun()
                print(report)
                if let write { try append(report, to: write) }
            } else {
                print("hive move run skipped: no server binaries (apt-get install postgresql)")
            }
        }
        if searchEvents > 0 {
            let report = try transcriptSearchRun()
            print(report)
            if let write { try append(report, to: write) }
        }
        if statsTurns > 0 {
            let report = try statsPage()
            print(report)
            if let write { try append(report, to: write) }
        }
        if forgeMB > 0 {
            let report = try await forgeTransfer()
            print(report)
            if let write { try append(report, to: write) }
        }
        if fuzzLines > 0 {
            let report = try await fuzz()
            print(report)
            if let write { try append(report, to: write) }
        }
        if gatewayMB > 0 {
            let report = try gatewayThroughput()
            print(report)
            if let write { try append(report, to: write) }
        }
        if policyGrid {
            let report = sessionPolicyGrid()
            print(report)
            if let write { try append(report, to: write) }
        }
        if gatewayLatencyRuns > 0 {
            let report = try await gatewayLatency()
            print(report)
            if let write { try append(report, to: write) }
        }
        if cageStarts > 0 {
            let report = try await cageStarts()
            print(report)
            if let write { try append(report, to: write) }
        }
        if reminders > 0 {
            let report = try await reminderBurst()
            print(report)
            if let write { try append(report, to: write) }
        }
        if turns > 0 {
            let report = try await harnessOverhead()
            print(report)
            if let write { try append(report, to: write) }
        }
        guard spine else { return }
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
        if let write { try append(report.markdown, to: write) }
    }

    func append(_ text: String, to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(filePath: path))
        handle.seekToEndOfFile()
        handle.write(Data(("\n" + text).utf8))
        try handle.close()
    }

    /// Harness overhead per turn: a stand-in claude that answers at once, `turns` messages queued, time
    /// until all are acked, minus the stand-in's own run time measured alone in the same run. Then the
    /// idle harness's resident memory.
    func harnessOverhead() async throws -> String {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hh-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let standIn = dir.appending(path: "claude")
        try Data("""
            #!/bin/sh
            cat >/dev/null
            printf '%s\\n' '{"type":"system","subtype":"init","session_id":"bench","model":"bench"}' \\
              '{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"ok"}],"usage":{"input_tokens":1,"output_tokens":1}}}' \\
              '{"type":"result","subtype":"success","is_error":false,"result":"ok","total_cost_usd":0}'

            """.utf8).write(to: standIn)
        chmod(standIn.path, 0o755)

        // The stand-in alone, spawned the same way (a process with stdin and stdout pipes).
        let alone = try await onThreads(1) { _ in
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<50 {
                let p = Process()
                p.executableURL = standIn
                let input = Pipe(), output = Pipe()
                p.standardInput = input
                p.standardOutput = output
                try p.run()
                try input.fileHandleForWriting.write(contentsOf: Data("prompt".utf8))
                try input.fileHandleForWriting.close()
                _ = output.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilGone()
            }
            return (clock.now - start).seconds / 50
        }[0]

        let core = try await CoreProcess.start(in: dir, synchronous: .full)
        defer { core.stop() }
        _ = try await core.admin().call(SpawnCommand(name: "bench"))
        var env = ProcessInfo.processInfo.environment
        env["HIVE_CLAUDE"] = standIn.path
        let harness = try await core.startHarness(root: dir.appending(path: "root"), environment: env)
        defer { if harness.isRunning { kill(harness.processIdentifier, SIGTERM); harness.waitUntilGone() } }
        let admin = try core.admin()
        let start = ContinuousClock.now
        for i in 0..<turns { _ = try await admin.call(SendCommand(to: "bench", body: "turn \(i)")) }
        try await core.waitDrained()
        let perTurn = (ContinuousClock.now - start).seconds / Double(turns)
        try await Task.sleep(for: .seconds(3))
        let rss = Self.memoryKiB(harness.processIdentifier)
        let coreRSS = Self.memoryKiB(core.process.processIdentifier)["VmRSS"] ?? 0
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Harness run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; release build; broker `synchronous = FULL`.
            \(turns) messages queued to one agent whose claude is a shell stand-in that answers at once.

            | what | value |
            |---|---|
            | wall time per turn (recv → claude → stats → ack) | \(String(format: "%.1f", perTurn * 1000)) ms |
            | the stand-in alone (spawn, prompt in, 3 lines out, exit) | \(String(format: "%.1f", alone * 1000)) ms |
            | **harness overhead per turn** (difference) | **\(String(format: "%.1f", (perTurn - alone) * 1000)) ms** |
            | idle harness RSS (3 s after the last turn) | \((rss["VmRSS"] ?? 0) / 1024) MiB |
            | of which private (RssAnon: heap, stacks; what each more agent costs) | \((rss["RssAnon"] ?? 0) / 1024) MiB |
            | of which file-backed (RssFile: code of the binary and the Swift runtime, shared by every process running it) | \((rss["RssFile"] ?? 0) / 1024) MiB |
            | proportional set size (Pss) | \((rss["Pss"] ?? 0) / 1024) MiB |
            | core RSS at the same moment, for scale | \(coreRSS / 1024) MiB |

            """
    }

    /// VmRSS, RssAnon, RssFile (from status) and Pss (from smaps_rollup), in KiB.
    /// `reminders` reminders falling due at the same instant: time until all are in the inbox, and the
    /// latency of ordinary sends from two other agents during the burst beside the same sends without it.
    func reminderBurst() async throws -> String {
        let dir = URL(filePath: String(cString: mkdtemp(strdup("/tmp/hr-XXXXXX"))!))
        defer { try? FileManager.default.removeItem(at: dir) }
        let core = try await CoreProcess.start(in: dir, synchronous: .full,
                                               extra: ["--reminder-cap", "\(reminders + 1)", "--reminder-burst", "\(reminders + 1)"])
        defer { core.stop() }
        let admin = try core.admin()
        for name in ["bench", "alice", "bob"] { _ = try await admin.call(SpawnCommand(name: name)) }

        /// Sends from alice and bob to the manager for `seconds`; returns (unix start, latency ms) per send.
        func sendLoad(seconds: Double) async throws -> [(at: Double, ms: Double)] {
            let senders = try ["alice", "bob"].map { try core.agent($0) }
            let per = try await onThreads(senders.count) { n in
                let clock = ContinuousClock()
                let end = clock.now + .milliseconds(Int64(seconds * 1000))
                var samples: [(at: Double, ms: Double)] = []
                while clock.now < end {
                    let at = Date().timeIntervalSince1970
                    let t = clock.now
                    _ = try senders[n].callBlocking(SendCommand(to: "manager", body: "load"))
                    samples.append((at, (clock.now - t).seconds * 1000))
                    Thread.sleep(forTimeInterval: 0.002)
                }
                return samples
            }
            return per.flatMap { $0 }
        }

        let quiet = try await sendLoad(seconds: 2).map(\.ms).sorted()
        let bench = try core.agent("bench")
        let due = Date().timeIntervalSince1970 + 8
        _ = try await onThreads(4) { n in
            for i in stride(from: n, to: reminders, by: 4) {
                _ = try bench.callBlocking(RemindCommand(message: "reminder \(i)", atUnix: due))
            }
        }
        while Date().timeIntervalSince1970 < due - 0.3 { try await Task.sleep(for: .milliseconds(10)) }
        async let loaded = sendLoad(seconds: 2.5)
        while Date().timeIntervalSince1970 < due { try await Task.sleep(for: .milliseconds(1)) }
        let watcher = try core.admin()
        var allIn = due
        while true {
            let row = try await watcher.call(ListCommand()).agents.first { $0.name == "bench" }
            if row?.unread == reminders { allIn = Date().timeIntervalSince1970; break }
            if Date().timeIntervalSince1970 > due + 60 { throw ValidationError("reminders not delivered within 60 s") }
            try await Task.sleep(for: .milliseconds(2))
        }
        // Only the sends that started while reminders were being delivered.
        let busy = try await loaded.filter { $0.at >= due && $0.at <= allIn }.map(\.ms).sorted()
        let date = ISO8601DateFormatter().string(from: Date())
        return """
            ## Reminder run of \(date)

            Machine: \(ProcessInfo.processInfo.processorCount) cores; release build; broker `synchronous = FULL`; batches of 200 per transaction.
            \(reminders) reminders set for one agent, all due at the same second. Meanwhile two other agents send to the
            manager in a loop (one send, 2 ms pause), measured by the client.

            | what | value |
            |---|---|
            | time from the due instant until all \(reminders) are in the inbox | \(String(format: "%.0f", (allIn - due) * 1000)) ms |
            | sends started during the burst: p50 / p99 / max (n = \(busy.count)) | \(f2(percentile(busy, 0.5))) / \(f2(percentile(busy, 0.99))) / \(f2(busy.last ?? 0)) ms |
            | the same sends with no reminders firing: p50 / p99 / max (n = \(quiet.count)) | \(f2(percentile(quiet, 0.5))) / \(f2(percentile(quiet, 0.99))) / \(f2(quiet.last ?? 0)) ms |

            """
    }

    func f2(_ x: Double) -> String { String(format: "%.2f", x) }

    static func memoryKiB(_ pid: Int32) -> [String: Int] {
        var out: [String: Int] = [:]
        for file in ["status", "smaps_rollup"] {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2, let key = parts.first?.dropLast(), ["VmRSS", "RssAnon", "RssFile", "Pss"].contains(String(key)) else { continue }
                out[String(key)] = Int(parts[1]) ?? 0
            }
        }
        return out
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
