import ArgumentParser
import Foundation
import HiveTelemetry
import HiveClient
import HiveHarness
import HiveHost
import HiveWire

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show an agent's per-turn stats (tokens, context, cost, tools, session decisions), or the hive's spend.",
        discussion: """
            Without an agent: what the hive spent today, over 7 days and this month, per agent and per model
            (priced by core with the hive's table, <root>/prices.json overriding it; --range 24h|7d|30d shows
            one of the three).
            Reads <root>/agents/<agent>/harness/turn-stats.sqlite; the root comes from the running hive (or
            --root). --since takes hours or days ago (6h, 2d) or unix seconds.
            Columns: STARTED, WAKE (who woke the turn), RESULT, IN/OUT/CACHE-R/CACHE-W tokens, CTX (context
            the last call saw), COST in USD, TOOLS, SESSION (continue/fresh/compact).
            --range 24h|7d|30d prints the totals the agent's stats page charts instead: turns, durations
            (p50/p95), tokens, cost, results, top tools and the session policy's decisions.
            COST is ours, from the tokens and the price table; CLI is the CLI's own figure for the turn (the
            delta of its running total_cost_usd), for comparison.
            --policies replays the agent's real turns under always-continue, the seed's rule (fresh at half
            the window with a cold 300 s cache), our planner and the offline optimum, and prints what each
            would have paid and its ratio to the optimum.
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent; without it, the hive's spend.") var agent: String?
    @Option(help: ArgumentHelp("Only turns since then: 6h, 2d, or unix seconds. Default: all.", valueName: "when")) var since: String?
    @Option(help: ArgumentHelp("The hive root, if the hive is not running.", valueName: "dir")) var root: String?
    @Option(help: ArgumentHelp("Totals over 24h, 7d or 30d (what the stats page charts) instead of rows.", valueName: "range")) var range: String?
    @Flag(help: "Replay the agent's turns under each session policy and the offline optimum.") var policies = false
    @Flag(help: "Print JSON instead of a table.") var json = false

    func validate() throws {
        if let agent { do { _ = try AgentName(agent) } catch { throw ValidationError(error.description) } }
        if agent == nil, since != nil || policies { throw ValidationError("--since and --policies are about one agent: give its name") }
        if let since, Self.parseSince(since) == nil { throw ValidationError("--since takes 6h, 2d or unix seconds, not '\(since)'") }
        if let range, StatsRange.named(range) == nil { throw ValidationError("--range takes 24h, 7d or 30d, not '\(range)'") }
        if range != nil, since != nil { throw ValidationError("give --range or --since, not both") }
    }

    static func parseSince(_ s: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        if let unix = Double(s) { return unix }
        guard let unit = s.last, let n = Double(s.dropLast()), n >= 0 else { return nil }
        switch unit {
        case "m": return now - n * 60
        case "h": return now - n * 3600
        case "d": return now - n * 86400
        default: return nil
        }
    }

    func run() async throws {
        try await operatorVerb {
            guard let agent else { return try await printSpend() }
            let name = try AgentName(agent)
            let rootPath: String
            if let root { rootPath = root } else { rootPath = try await hive.connect().call(InfoCommand()).root }
            // The store lives in the agent's own directory: it is read from a private copy made through
            // descriptors that follow no link, so nothing is ever opened, let alone written, through
            // whatever the agent put there.
            let inHarness = HiveLayout.harnessComponents(name)
            let file = HiveLayout.turnStatsFile
            guard let fd = ConfinedPath.openFile(inHarness + [file], under: URL(filePath: rootPath), maxBytes: 256 << 20) else {
                throw ValidationError("no turn stats for \(name) yet (or its store is not a plain file of at most 256 MiB)")
            }
            var template = Array("/tmp/hive-stats-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw ValidationError("cannot make a temporary directory") }
            let copy = URL(filePath: String(cString: made))
            defer { try? FileManager.default.removeItem(at: copy) }
            try ConfinedPath.copy(fd, to: copy.appending(path: file))
            if let wal = ConfinedPath.openFile(inHarness + [file + "-wal"], under: URL(filePath: rootPath), maxBytes: 256 << 20) {
                try ConfinedPath.copy(wal, to: copy.appending(path: file + "-wal"))
            }
            let store = try TurnStatsStore(path: copy.appending(path: file).path)
            if let range = range.flatMap(StatsRange.named) { return try Self.printReport(try store.report(range), json: json) }
            if policies { return try Self.printPolicies(try store.turns(since: since.flatMap { Self.parseSince($0) } ?? 0), json: json) }
            let turns = try store.turns(since: since.flatMap { Self.parseSince($0) } ?? 0)
            if json { return printJSON(turns) }
            if turns.isEmpty { return print("(no turns)") }
            let time = DateFormatter()
            time.dateFormat = "MM-dd HH:mm:ss"
            var rows = [["STARTED", "WAKE", "RESULT", "IN", "OUT", "CACHE-R", "CACHE-W", "CTX", "COST", "CLI", "TOOLS", "SESSION"]]
            for t in turns {
                rows.append([time.string(from: Date(timeIntervalSince1970: t.startedAt)), t.wakeSource, t.resultKind,
                             "\(t.inputTokens)", "\(t.outputTokens)", "\(t.cacheReadTokens)", "\(t.cacheCreationTokens)",
                             t.contextTokens.map(String.init) ?? "-", String(format: "%.4f", t.costUSD),
                             t.cliCostUSD.map { String(format: "%.4f", $0) } ?? "-", "\(t.toolCalls)", t.sessionAction])
            }
            printTable(rows)
            let cost = turns.map(\.costUSD).reduce(0, +)
            let ok = turns.filter { $0.resultKind == "ok" }.count
            print("\n\(turns.count) turns, \(ok) ok, cost \(String(format: "%.4f", cost)) USD, mean duration \(String(format: "%.1f", turns.map(\.durationSeconds).reduce(0, +) / Double(turns.count))) s")
        }
    }

    /// The hive's spend from core: per agent and per model, for each period (or the one --range names).
    func printSpend() async throws {
        let reply = try await hive.connect().call(SpendCommand())
        if json { return printJSON(reply) }
        let wanted = range.map { ["24h": "today", "7d": "7 days", "30d": "month"][$0] ?? $0 }
        let periods = reply.periods.filter { wanted == nil || $0.period == wanted }
        func cell(_ s: Spent?) -> String { s.map { String(format: "$%.4f", $0.usd) } ?? "-" }
        var rows = [["", ""] + periods.map { $0.period.uppercased() }]
        rows.append(["hive", ""] + periods.map { cell($0.hive) })
        for agent in Set(periods.flatMap(\.agents.keys)).sorted() { rows.append(["agent", agent] + periods.map { cell($0.agents[agent]) }) }
        for model in Set(periods.flatMap(\.models.keys)).sorted() { rows.append(["model", model] + periods.map { cell($0.models[model]) }) }
        printTable(rows)
        print("\nprices: \(reply.prices) (<root>/prices.json overrides)")
    }

    static func printPolicies(_ turns: [TurnStat], json: Bool) throws {
        let model = turns.last?.model ?? "sonnet"
        let price = PriceTable.builtIn.price(model)?.0.input ?? 3
        let e = PolicyEvaluation.evaluate(turns, policy: SessionPolicy(), inputPricePerMillion: price)
        if json { return printJSON(e) }
        guard e.turns > 1 else { return print("(too few turns with a context size to replay)") }
        print("\(e.turns) turns replayed; cache TTL \(Int(e.ttl)) s (writes \(e.write)x); input priced at $\(price)/M (\(model)); output left out (the same under every policy)")
        var rows = [["POLICY", "INPUT TOKENS (base price)", "USD", "÷ OPTIMUM"]]
        rows += e.rows.map { [$0.policy, String(Int($0.tokens.rounded())), String(format: "%.4f", $0.usd), String(format: "%.3f", $0.ratio)] }
        printTable(rows)
        print(String(format: "\nthe planner %@ %.4f USD against always-continue", e.savedUSD >= 0 ? "saved" : "cost", abs(e.savedUSD)))
    }

    static func printReport(_ r: StatsReport, json: Bool) throws {
        if json { return printJSON(r) }
        let durations = r.buckets.compactMap(\.p50)
        let worst = r.buckets.compactMap(\.p95).max()
        let sum = { (k: KeyPath<StatsBucket, Int>) in r.buckets.reduce(0) { $0 + $1[keyPath: k] } }
        print("last \(r.range): \(r.turns) turns, cost \(String(format: "%.4f", r.costUSD)) USD")
        if !durations.isEmpty {
            print("duration: median of the buckets' p50 \(String(format: "%.1f", durations.sorted()[durations.count / 2])) s, worst p95 \(String(format: "%.1f", worst ?? 0)) s")
        }
        print("tokens: input \(sum(\.inputTokens)), output \(sum(\.outputTokens)), cache read \(sum(\.cacheReadTokens)), cache write \(sum(\.cacheWriteTokens))")
        if !r.results.isEmpty { print("results: " + r.results.map { "\($0.name) \($0.count)" }.joined(separator: ", ")) }
        if !r.tools.isEmpty { print("top tools: " + r.tools.map { "\($0.name) \($0.count)" }.joined(separator: ", ")) }
        for d in r.decisions {
            print("session \(d.action): \(d.turns) turns, \(d.tokensSaved >= 0 ? "saved" : "cost") \(Int(abs(d.tokensSaved))) tokens against the other choice (estimated)")
        }
    }
}
