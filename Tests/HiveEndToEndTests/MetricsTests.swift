import Foundation
import HiveClient
import HiveWire
import ModelStandIn
import Testing

/// Prometheus metrics as a scraper sees them: core's loopback port and the web process's /metrics, read
/// with the Prometheus project's own text-format parser (prometheus_client, from PyPI).
@Suite("Prometheus metrics", .serialized, .timeLimit(.minutes(3)))
struct MetricsTests {
    struct Sample: Decodable { var name: String; var labels: [String: String]; var value: Double }

    /// Parses an exposition with prometheus_client's parser; throws if it is not valid text format.
    static func parse(_ text: String) throws -> [Sample] {
        let file = URL(filePath: NSTemporaryDirectory()).appending(path: "metrics-\(UUID().uuidString.prefix(8)).txt")
        try Data(text.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let p = Process()
        p.executableURL = URL(filePath: "/usr/bin/python3")
        p.arguments = ["-c", """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = []
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    out.append({"name": s.name, "labels": s.labels, "value": s.value})
            print(json.dumps(out))
            """, file.path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let problem = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilGone()
        guard p.terminationStatus == 0 else {
            throw HiveClientError.protocolError("prometheus_client could not parse the exposition: \(String(decoding: problem, as: UTF8.self).suffix(600))")
        }
        return try JSONDecoder().decode([Sample].self, from: data)
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in sample.name == name && labels.allSatisfy { k, v in sample.labels[k] == v } }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }

    @Test("core's /metrics: messages, wake latency, turns by outcome and duration, tokens and cost by model, agents by state with the over-budget one, spend per agent, store timings; valid Prometheus text")
    func coreMetrics() async throws {
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        let hive = try LiveHive()
        let port = LiveHive.freePort()
        let cage = FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") ? "bwrap" : "process"
        try await hive.start(extra: ["--metrics-listen", "127.0.0.1:\(port)"], cage: cage, environment: try RealClaude.environment(api: api))
        try await hive.spawnIdle("iris")
        for n in 1...2 { _ = try await hive.admin().call(SendCommand(to: "iris", body: "@usage in=20000 out=100\n@say turn \(n)")) }
        var reported: [[String: String]] = []
        try await hive.eventually("two turns are reported", timeout: .seconds(60)) {
            reported = try hive.turnStats("iris").filter { $0["wake_source"] == "operator" && $0["reported"] == "1" }
            return reported.count == 2
        }
        // Held over a budget, with one message waiting.
        _ = try await hive.admin().call(BudgetCommand(agent: "iris", set: Budget(usdPerDay: 0.01)))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: "@say three"))
        try await hive.eventually("iris is held") { try await hive.agentRow("iris")?.state == .overBudget }
        let spend = try #require(try await hive.admin().call(BudgetCommand(agent: "iris")).budgets.first)

        // The manager hears of the hold and takes turns of its own: scrape until the hive's spend holds still
        // between two reads, so the scrape and the spend describe the same moment.
        let token = try String(contentsOf: hive.root.appending(path: "metrics.token"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try FileManager.default.attributesOfItem(atPath: hive.root.appending(path: "metrics.token").path)[.posixPermissions] as? Int == 0o600)
        #expect(try TCPHTTP.request(port, "GET", "/metrics").status == 401, "no token, no metrics")
        #expect(try TCPHTTP.request(port, "GET", "/metrics", headers: ["Authorization": "Bearer " + String(repeating: "0", count: 64)]).status == 401)
        var samples: [Sample] = [], hiveToday = -1.0, headers: [String: String] = [:]
        try await hive.eventually("a scrape taken while the hive's spend holds still agrees with it", timeout: .seconds(30)) {
            let before = try await hive.admin().call(SpendCommand()).periods.first { $0.period == "today" }?.hive.usd ?? -1
            // (Scrapes within 5 s share one reading: wait that long between tries.)
            let scrape = try TCPHTTP.request(port, "GET", "/metrics", headers: ["Authorization": "Bearer " + token])
            #expect(scrape.status == 200)
            headers = scrape.headers
            samples = try Self.parse(scrape.body)
            hiveToday = try await hive.admin().call(SpendCommand()).periods.first { $0.period == "today" }?.hive.usd ?? -2
            let agrees = before == hiveToday && abs((Self.value(samples, "hive_cost_usd_total") ?? 0) - hiveToday) < 1e-9
            if !agrees { try await Task.sleep(for: .seconds(5.1)) }
            return agrees
        }
        #expect(headers["content-type"]?.contains("text/plain; version=0.0.4") == true)
        #expect((Self.value(samples, "hive_messages_sent_total") ?? 0) >= 3)
        #expect((Self.value(samples, "hive_messages", ["state": "pending"]) ?? 0) >= 1, "the held message waits")
        #expect((Self.value(samples, "hive_wake_latency_seconds_count") ?? 0) >= 2)
        let ok = Self.value(samples, "hive_turns_total", ["outcome": "ok"]) ?? 0
        #expect(ok >= 2, "iris's two turns (and the manager's)")
        #expect(Self.value(samples, "hive_turn_duration_seconds_count") == Self.value(samples, "hive_turns_total"), "every turn timed")
        #expect(Self.value(samples, "hive_agents", ["state": "over_budget"]) == 1)
        #expect(abs((Self.value(samples, "hive_agent_spend_usd", ["agent": "iris", "period": "today"]) ?? -1) - spend.today.usd) < 1e-9)
        #expect(Self.value(samples, "hive_agent_budget_usd", ["agent": "iris", "period": "day"]) == 0.01)
        let sonnetInput = samples.filter { $0.name == "hive_tokens_total" && $0.labels["kind"] == "input" && ($0.labels["model"] ?? "").contains("sonnet") }
        #expect(sonnetInput.reduce(0) { $0 + $1.value } >= 40_000, "both turns' input tokens, by model")
        #expect((Self.value(samples, "hive_sqlite_commit_seconds_count") ?? 0) >= 3)
        #expect(Self.value(samples, "hive_approvals_pending") == 0 && Self.value(samples, "hive_reminders_pending") == 0)
        #expect(samples.allSatisfy { $0.labels["agent"] == nil || ["hive_agent_spend_usd", "hive_agent_budget_usd"].contains($0.name) },
                "an agent's name labels only the per-agent gauges")
        // Every series the shipped Grafana dashboard charts is one core or the web process exports.
        let dashboard = try String(contentsOf: URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "ops/grafana-dashboard.json"), encoding: .utf8)
        let charted = Set(dashboard.matches(of: /hive_[a-z0-9_]+/).map { String($0.output).replacing(/_(bucket|count|sum)$/, with: "") })
        let exported = Set(samples.map { $0.name.replacing(/_(bucket|count|sum)$/, with: "") })
        #expect(charted.count >= 10)
        for name in charted where !name.hasPrefix("hive_web_") { #expect(exported.contains(name), "the dashboard charts \(name), which core does not export") }
        // The same text on the admin socket (what `hive web` serves with its own).
        let viaSocket = try await hive.admin().call(MetricsCommand()).text
        #expect(viaSocket.contains("hive_turns_total{outcome=\"ok\"}") && viaSocket.contains("hive_agents{state=\"over_budget\"} 1"))
    }
}
