import ArgumentParser
import Foundation
import HiveClient
import HiveCore
import HiveHost
import HiveWeb
import HiveWire

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the hive's agents with their state and inbox counts.",
        discussion: """
            STATE is what the agent's harness reports (idle, thinking, compacting, rate_limited, backoff,
            needs_login, needs_billing, claude_missing), running when something without a report is connected, stopped or
            crashed when nothing is, and destroyed for a tombstone that keeps its state. UNREAD counts
            messages waiting; INFLIGHT those handed to the harness and not yet acked; DEAD those it gave up
            on (the manager was told). TODAY is what it spent today in USD (host time zone, priced by the hive's
            table; hive budget shows caps). CAGE is the running cage's isolation (bwrap or process, its network)
            and whether its memory and process limits are enforced. NOTE says until when a rate limit
            holds, what to do, and when the agent's claude is not the version the tests pinned.
            In a hive on many hosts (hive core --database) NODE is the node each agent runs on; an agent \
            whose node stopped sending heartbeats shows node_down (its messages wait in its inbox).
            """)

    @OptionGroup var hive: RunDirOption
    @Flag(help: "Print a JSON array of objects instead of a table.") var json = false

    func run() async throws {
        try await operatorVerb {
            let agents = try await hive.connect().call(ListCommand()).agents
            if json { return printJSON(agents) }
            // The NODE column only in a hive on many hosts.
            let nodes = agents.contains { $0.node != nil }
            var rows = [["NAME"] + (nodes ? ["NODE"] : []) + ["STATE", "UNREAD", "INFLIGHT", "DEAD", "TODAY", "CAGE", "NOTE"]]
            let clock = DateFormatter()
            clock.dateFormat = "HH:mm"
            rows += agents.map { a in
                var note = a.detail ?? ""
                if let until = a.rateLimitedUntil {
                    note = "until \(clock.string(from: Date(timeIntervalSince1970: until)))" + (note.isEmpty ? "" : "; \(note)")
                }
                if let v = a.cliVersion, v != ClaudeExecutable.testedVersion {
                    note += (note.isEmpty ? "" : "; ") + "claude \(v), not the tested \(ClaudeExecutable.testedVersion)"
                }
                return [a.name] + (nodes ? [a.node ?? "-"] : []) + [a.state.rawValue, String(a.unread), String(a.inflight), String(a.deadLetters),
                        a.todayUsd.map { String(format: "$%.2f", $0) } ?? "-", a.cage ?? "-", note]
            }
            printTable(rows)
        }
    }
}

struct SendMessage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message as the operator.",
        discussion: """
            <to> is an agent name, 'manager', or '*' for every agent (a broadcast). Bodies are limited to
            \(WireLimits.maxBodyBytes) bytes; put long content in a file and send its path.
            Example: hive send iris "please review /shared/plan.md" --reply-to 42
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "Recipient: an agent, 'manager' or '*'.") var to: String
    @Argument(help: "The message text.") var body: String
    @Option(name: .customLong("reply-to"), help: ArgumentHelp("Id of the message this answers.", valueName: "id"))
    var replyTo: Int64?

    func validate() throws {
        do { _ = try Recipient(to) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(SendCommand(to: to, body: body, inReplyTo: replyTo))
            let who = reply.recipients.count == 1 ? reply.recipients[0] : "\(reply.recipients.count) agents"
            print("sent to \(who): id \(reply.ids.map(String.init).joined(separator: ", "))")
            if let why = reply.inReplyToDropped {
                FileHandle.standardError.write(Data("hive: note: --reply-to was dropped: \(why)\n".utf8))
            }
        }
    }
}

struct Inbox: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show messages sent to the operator, newest first.",
        discussion: "Messages shown are marked read. New ones are flagged with '*'.")

    @OptionGroup var hive: RunDirOption
    @Option(help: "How many messages to show.") var limit = 20
    @Flag(help: "Print a JSON array of objects instead of text.") var json = false

    func run() async throws {
        try await operatorVerb {
            let messages = try await hive.connect().call(InboxCommand(limit: limit)).messages
            if json { return printJSON(messages) }
            if messages.isEmpty { return print("(no messages to the operator)") }
            let fmt = ISO8601DateFormatter()
            for m in messages {
                let new = m.state == .pending ? "*" : " "
                let reply = m.inReplyTo.map { " (reply to #\($0))" } ?? ""
                print("\(new) #\(m.id) from \(m.from) at \(fmt.string(from: Date(timeIntervalSince1970: m.sentAt)))\(reply)")
                print("    " + m.body.replacingOccurrences(of: "\n", with: "\n    "))
            }
        }
    }
}

struct Spawn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Register a new agent: its state dirs and its socket appear at once.",
        discussion: """
            Names are short lowercase identifiers: a letter, then letters, digits or '-', at most 31
            characters. operator, manager, reminder, system and hive are reserved.
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "The new agent's name.") var name: String
    @Option(help: ArgumentHelp("""
        In a hive on many hosts: the node to run it on (hive nodes lists them). Default: the node with the \
        most room (memory for 2 GB an agent, then the lightest load). Another node starts it within seconds.
        """, valueName: "name"))
    var node: String?

    func validate() throws {
        do { _ = try AgentName.spawnable(name) } catch { throw ValidationError(error.description) }
        if let node { do { _ = try AgentName(node) } catch { throw ValidationError("--node: \(error.description)") } }
    }

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(SpawnCommand(name: name, node: node))
            if reply.socket.isEmpty, let node = reply.node {
                print("spawned \(reply.name) on node \(node); that node starts it within seconds")
            } else {
                print("spawned \(reply.name)\(reply.node.map { " on node \($0)" } ?? ""); its socket is \(reply.socket)")
            }
        }
    }
}

struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the nodes of a hive on many hosts, with their heartbeats and load.",
        discussion: """
            A hive on one host has no nodes. In a hive on many hosts (hive core --database … --node NAME on \
            each), HEARTBEAT is how long ago each node last told the database it is alive; a node silent for \
            longer than its lease (--node-lease, 15 s) is down and its agents show node_down in hive ls, their \
            messages waiting. LOAD is the host's one-minute load average over its cores. The node you asked is \
            marked with *.
            """)

    @OptionGroup var hive: RunDirOption
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(NodesCommand())
            if json { return printJSON(reply.nodes) }
            guard !reply.nodes.isEmpty else {
                print("this hive runs on one host (no nodes); see docs/multi-host.md to spread it over several")
                return
            }
            var rows = [["NODE", "HOST", "STATE", "HEARTBEAT", "AGENTS", "LOAD", "MEMORY"]]
            rows += reply.nodes.map { n in
                [n.name + (n.name == reply.here ? " *" : ""), n.host, n.up ? "up" : "down", String(format: "%.1fs ago", n.heartbeatAge),
                 String(n.agents), String(format: "%.2f/%d", n.load, n.cores), "\(n.memoryMegabytes / 1024) GiB"]
            }
            printTable(rows)
        }
    }
}

struct Move: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move an agent to another node of a hive on many hosts.",
        discussion: """
            Its cage stops, its state and harness directories are streamed to the other node with a SHA-256 \
            checked on arrival, and it starts there. Its inbox stays in the database: messages sent meanwhile \
            wait for it. If anything fails before the other node takes it, it runs where it was again. Ask any \
            node; the agent's own node does the work. Both nodes need their endpoint (hive core --node-listen). \
            The manager stays on the node holding the hive's git side.
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent to move.") var name: String
    @Option(help: ArgumentHelp("The node to move it to (hive nodes lists them).", valueName: "name")) var node: String

    func validate() throws {
        do { _ = try AgentName(name) } catch { throw ValidationError(error.description) }
        do { _ = try AgentName(node) } catch { throw ValidationError("--node: \(error.description)") }
    }

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(MoveCommand(name: name, node: node))
            print("moved \(reply.name) from node \(reply.from) to node \(reply.to) (\(reply.bytes) bytes in \(String(format: "%.1f", reply.seconds)) s)")
        }
    }
}

struct Destroy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove an agent's socket, keeping its state as a tombstone.",
        discussion: "With --purge, its state, harness files and inbox are deleted too. The manager cannot be destroyed.")

    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent to destroy.") var name: String
    @Flag(help: "Also delete the agent's directories and messages. Cannot be undone.") var purge = false

    func validate() throws {
        do { _ = try AgentName(name) } catch { throw ValidationError(error.description) }
    }

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(DestroyCommand(name: name, purge: purge))
            print(reply.purged ? "destroyed and purged \(reply.name)" : "destroyed \(reply.name) (state kept as a tombstone)")
        }
    }
}

/// Prints rows as left-aligned columns.
func printTable(_ rows: [[String]]) {
    guard let width = rows.first?.count else { return }
    let widths = (0..<width).map { col in rows.map { $0[col].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { i, cell in i == width - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: "  "))
    }
}

/// Prints a value as pretty JSON with the wire's snake_case keys.
func printJSON<T: Encodable>(_ value: T) {
    let encoder = WireCoding.encoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

struct Reminders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List reminders waiting to fire, soonest first.",
        discussion: "Agents set reminders with their remind tool; each arrives in the agent's own inbox from 'reminder'.")

    @OptionGroup var hive: RunDirOption
    @Option(help: "Only this agent's reminders.") var agent: String?
    @Flag(help: "Print a JSON array of objects instead of a table.") var json = false

    func validate() throws {
        if let agent { do { _ = try AgentName(agent) } catch { throw ValidationError(error.description) } }
    }

    func run() async throws {
        try await operatorVerb {
            let reminders = try await hive.connect().call(RemindersCommand(agent: agent)).reminders
            if json { return printJSON(reminders) }
            if reminders.isEmpty { return print("(no reminders pending)") }
            let time = DateFormatter()
            time.dateFormat = "yyyy-MM-dd HH:mm:ss"
            var rows = [["ID", "AGENT", "DUE", "TEXT"]]
            rows += reminders.map { [String($0.id), $0.agent, time.string(from: Date(timeIntervalSince1970: $0.dueAt)),
                                     String($0.body.replacingOccurrences(of: "\n", with: " ").prefix(60))] }
            printTable(rows)
        }
    }
}

struct CancelReminder: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel-reminder", abstract: "Cancel a reminder that has not fired yet.")

    @OptionGroup var hive: RunDirOption
    @Argument(help: "The reminder's id (see hive reminders).") var id: Int64

    func run() async throws {
        try await operatorVerb {
            _ = try await hive.connect().call(CancelReminderCommand(id: id))
            print("cancelled reminder \(id)")
        }
    }
}

/// The `<name>` argument of the verbs that act on one agent, validated at the edge.
struct AgentArgument: ParsableArguments {
    @Argument(help: "The agent.") var name: String
    func validate() throws { do { _ = try AgentName(name) } catch { throw ValidationError(error.description) } }
}

struct StartAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Start an agent's harness (after hive stop).")
    @OptionGroup var hive: RunDirOption
    @OptionGroup var agent: AgentArgument
    func run() async throws {
        try await operatorVerb { print("\(try await hive.connect().call(StartCommand(name: agent.name)).name): starting") }
    }
}

struct StopAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop an agent's harness; it stays stopped (also across restarts of the hive) until hive start.",
        discussion: "Messages to a stopped agent wait in its inbox. The turn in progress is stopped and its message redelivered later.")
    @OptionGroup var hive: RunDirOption
    @OptionGroup var agent: AgentArgument
    func run() async throws {
        try await operatorVerb { print("\(try await hive.connect().call(StopCommand(name: agent.name)).name): stopped") }
    }
}

struct RestartAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Restart an agent's harness, or every agent's with --all (the manager first).")
    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent (or use --all).") var name: String?
    @Flag(help: "Restart every live agent: the manager first, then the others, and the manager is told.") var all = false
    func validate() throws {
        guard (name == nil) == all else { throw ValidationError("name an agent or pass --all") }
        if let name { do { _ = try AgentName(name) } catch { throw ValidationError(error.description) } }
    }
    func run() async throws {
        try await operatorVerb {
            let r = try await hive.connect().call(RestartCommand(name: name, all: all ? true : nil))
            print("restarted \(r.restarted.joined(separator: ", "))")
        }
    }
}

struct ReviveAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revive", abstract: "Bring a destroyed agent (a tombstone) back with its state and inbox.")
    @OptionGroup var hive: RunDirOption
    @OptionGroup var agent: AgentArgument
    func run() async throws {
        try await operatorVerb { print("\(try await hive.connect().call(ReviveCommand(name: agent.name)).name): revived") }
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the hive, while it runs, into DEST (which must not exist or be empty).",
        discussion: """
            The broker and the forge's database are copied with SQLite's online backup API (a consistent
            snapshot, whatever core is writing); the rest of the root (config and applied repos, credentials,
            the forge's repos, every agent's state and harness dirs, /shared) file by file, owners and modes
            kept, never through a link (an agent's links are copied as links; fifos and sockets are skipped and
            listed). Run it as the user the hive runs as (root for cages). DEST holds root/ and hive-backup.json.
            Restore with: hive restore DEST --root NEW_ROOT, then start the hive on NEW_ROOT.
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "Where the backup goes.") var destination: String
    @Option(help: ArgumentHelp("The hive root, if the hive is not running.", valueName: "dir")) var root: String?

    func run() async throws {
        try await operatorVerb {
            let rootPath: String
            if let root { rootPath = root } else { rootPath = try await hive.connect().call(InfoCommand()).root }
            let start = ContinuousClock.now
            let summary = try HiveBackup.take(root: URL(filePath: rootPath), to: URL(filePath: destination))
            print("backed up \(rootPath) to \(destination) in \(String(format: "%.1f", Double((ContinuousClock.now - start).components.seconds) + Double((ContinuousClock.now - start).components.attoseconds) / 1e18)) s: \(summary)")
        }
    }
}

struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put a backup (hive backup) back as a hive root.",
        discussion: """
            The root must not exist or be empty, unless --force (then what is there stays and the backup's files
            are added around it). No core may run on it meanwhile. Start the hive on it afterwards
            (hive up --root ROOT, or hive core --root ROOT): agents come back with their messages, configs and dirs.
            """)

    @Argument(help: "A directory made by hive backup.") var backup: String
    @Option(help: ArgumentHelp("The root to restore into.", valueName: "dir")) var root: String
    @Flag(help: "Restore into a root that already holds files.") var force = false

    func run() async throws {
        try await operatorVerb {
            let summary = try HiveBackup.restore(from: URL(filePath: backup), to: URL(filePath: root), force: force)
            print("restored \(backup) into \(root): \(summary)")
        }
    }
}

struct Search: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Search every message of the hive, best match first.",
        discussion: """
            Words must all appear (any case, accents ignored); "a phrase" in quotes; migr* for a prefix.
            Filters: from:NAME, to:NAME (an agent, operator or system), after:WHEN, before:WHEN where WHEN is a
            date (2026-12-01), an age (6h, 2d) or unix seconds. Ranked by bm25 (with a "phrase": newest first);
            matches are shown between [ ].
              hive search 'deploy failed'
              hive search '"rate limit" from:iris after:2d'
            With --transcripts, the agents' turn transcripts instead (what they and their tools said, each
            agent's own events, kept for --events-retention-days), newest first; after: and before: apply,
            from: and to: do not. Each agent's harness searches its own; as root the search runs as the
            dashboard's unprivileged uid, as the dashboard's does.
              hive search --transcripts 'permission denied' --agent iris
            Agents search too (the search tool), but only the messages they sent or received and their own
            transcript.
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "The query.") var query: [String]
    @Option(help: "How many results, best first.") var limit = 20
    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "Search the agents' turn transcripts, not messages.") var transcripts = false
    @Option(name: .customLong("agent"), help: ArgumentHelp("With --transcripts: only this agent's (repeatable). Default: every live agent.", valueName: "name"))
    var agents: [String] = []
    /// Set when this process is the search run again as the dashboard's uid (the agent list is final).
    @Flag(name: .customLong("dropped"), help: .hidden) var dropped = false

    func validate() throws {
        do { _ = try SearchQuery.parse(query.joined(separator: " ")) } catch { throw ValidationError(error.description) }
        guard (1...SearchQuery.maxResults).contains(limit) else { throw ValidationError("--limit must be from 1 to \(SearchQuery.maxResults)") }
    }

    func run() async throws {
        if transcripts { return try await searchTranscripts() }
        try await operatorVerb {
            let hits = try await hive.connect().call(SearchCommand(query: query.joined(separator: " "), limit: limit)).hits
            if json { return printJSON(hits) }
            if hits.isEmpty { return print("(no message matches)") }
            let time = DateFormatter()
            time.dateFormat = "MM-dd HH:mm"
            var rows = [["ID", "SENT", "FROM", "TO", "MATCH"]]
            rows += hits.map { h in
                ["\(h.message.id)", time.string(from: Date(timeIntervalSince1970: h.message.sentAt)), h.message.from, h.message.to,
                 String(h.snippet.replacingOccurrences(of: "\n", with: " ").prefix(100))]
            }
            printTable(rows)
        }
    }
}

extension Search {
    /// Transcripts live in each agent's own files, served by its harness: asked over its page socket, never
    /// opened by root. As root, the agent list is read from core and the search runs again as the
    /// dashboard's uid (the one that may reach the agents' pages), like `hive web`.
    func searchTranscripts() async throws {
        try await operatorVerb {
            var names = agents
            // The agents' sockets are theirs: root never connects to one.
            if dropped && geteuid() == 0 { throw ValidationError("--dropped is for the search run again as the dashboard's uid, not for root") }
            if !dropped {
                let live = try await hive.connect().call(ListCommand()).agents.filter { $0.state != .destroyed }.map(\.name)
                if let unknown = names.first(where: { !live.contains($0) }) { throw ValidationError("no live agent named '\(unknown)'") }
                if names.isEmpty { names = live }
                if geteuid() == 0 {
                    var again: [String] = ["search", "--transcripts", "--dropped", "--run-dir", hive.resolved.path, "--limit", String(limit)]
                    if json { again.append("--json") }
                    for name in names { again += ["--agent", name] }
                    try PrivilegeDrop.reexec(as: WebSurface.uid, arguments: again + ["--"] + query, password: nil)
                }
            }
            let result = try await TranscriptSearch.across(names, query: query.joined(separator: " "), limit: limit, runDir: hive.resolved)
            if json { return printJSON(result) }
            for (name, why) in result.unreachable.sorted(by: { $0.key < $1.key }) {
                FileHandle.standardError.write(Data("hive: \(name) not searched: \(Pending.printable(String(why.prefix(200))))\n".utf8))
            }
            if result.hits.isEmpty { return print("(no transcript matches)") }
            let time = DateFormatter()
            time.dateFormat = "MM-dd HH:mm:ss"
            var rows = [["AGENT", "TURN", "AT", "KIND", "MATCH"]]
            rows += result.hits.map { h in
                [h.agent ?? "", h.turn.map(String.init) ?? "", time.string(from: Date(timeIntervalSince1970: h.at)), Pending.printable(h.kind),
                 Pending.printable(String(h.snippet.replacingOccurrences(of: "\n", with: " ").prefix(100)))]
            }
            printTable(rows)
        }
    }
}

struct BudgetVerb: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Show or set spending caps: the hive's, or an agent's (the operator's raise over its agent.json).",
        discussion: """
            Without options: every budget with what was spent today and this month, the expected cost of the
            next turn (the p90 of recent turns) and whether the agent is held. Core holds an agent (state
            over_budget; its messages wait unacked) before a turn that would pass a cap, and the manager and you
            are told once; it resumes when the period renews (midnight, the 1st, host time zone) or at once
            when a cap is raised here. A running turn is never stopped.
            An agent's own caps are "budget" in its agent.json (the manager proposes, you approve); what you
            set here for an agent wins until --clear. The hive's cap (no NAME) holds every agent but the manager.
              hive budget                                 all budgets
              hive budget --usd-per-day 50                the hive's cap
              hive budget worker --usd-per-day 10 --usd-per-month 150
              hive budget worker --clear                  back to its agent.json
            Tokens count input + output + cache writes. For a subscription (USD is notional there), a share of the
            credential's 5-hour or weekly window holds the agent once the window is that used, until it resets
            (the use is what the API's answers report; WINDOWS shows it):
              hive budget helper --five-hour-share 0.5    leave half of every 5-hour window to the others
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "An agent; without it, the hive.") var name: String?
    @Option(name: .customLong("usd-per-day"), help: "USD a day.") var usdPerDay: Double?
    @Option(name: .customLong("usd-per-month"), help: "USD a month.") var usdPerMonth: Double?
    @Option(name: .customLong("tokens-per-day"), help: "Tokens a day.") var tokensPerDay: Int?
    @Option(name: .customLong("tokens-per-month"), help: "Tokens a month.") var tokensPerMonth: Int?
    @Option(name: .customLong("five-hour-share"), help: "A subscription: wait once the credential's 5-hour window is this used (0.01–1).") var fiveHourShare: Double?
    @Option(name: .customLong("seven-day-share"), help: "A subscription: wait once the credential's weekly window is this used (0.01–1).") var sevenDayShare: Double?
    @Option(name: .customLong("warn-at"), help: "Warn at this share of a cap (0.1–1; default 0.8).") var warnAt: Double?
    @Flag(help: "Drop the operator's cap (an agent goes back to its agent.json).") var clear = false
    @Flag(help: "Print JSON instead of a table.") var json = false

    var setting: Budget? {
        let b = Budget(usdPerDay: usdPerDay, usdPerMonth: usdPerMonth, tokensPerDay: tokensPerDay, tokensPerMonth: tokensPerMonth,
                       fiveHourShare: fiveHourShare, sevenDayShare: sevenDayShare, warnAt: warnAt)
        return b.isEmpty && warnAt == nil ? nil : b
    }

    func validate() throws {
        if let name { do { _ = try AgentName(name) } catch { throw ValidationError(error.description) } }
        if clear, setting != nil { throw ValidationError("give caps or --clear, not both") }
    }

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(BudgetCommand(agent: name, set: setting, clear: clear ? true : nil))
            if json { return printJSON(reply) }
            var rows = [["SCOPE", "CAPS", "FROM", "TODAY", "MONTH", "NEXT TURN", "WINDOWS", "STATUS"]]
            rows += reply.budgets.map { b in
                let caps = b.budget.caps.map(\.text).joined(separator: ", ")
                let windows = b.windows.sorted { $0.key < $1.key }.map { "\($0.key) \(Int(($0.value.utilization * 100).rounded())) %" }.joined(separator: ", ")
                return [b.scope, caps.isEmpty ? "-" : caps, b.source, String(format: "$%.2f / %d tok", b.today.usd, b.today.tokens),
                        String(format: "$%.2f / %d tok", b.month.usd, b.month.tokens),
                        b.scope == "hive" ? "" : String(format: "$%.4f", b.expectedTurn.usd),
                        windows.isEmpty ? "-" : "\(b.credential ?? "default"): \(windows)",
                        b.status == "ok" ? b.detail : "\(b.status.uppercased()): \(b.detail)"]
            }
            printTable(rows)
        }
    }
}

struct Net: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a gated agent's network gateway decided: model requests with their tokens, tunnels, forge connections.",
        discussion: """
            A gated agent (network "gated" in agent.json, what new agents get) reaches the outside only through
            core's gateway: the model API (the credential is added there; the agent holds a placeholder), the
            forge, and HTTPS to the hosts its egress.allow lists. Each decision is logged here, newest first:
            allowed or refused and why, bytes each way, and for the model the tokens its answer reported.
            """)

    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent.") var name: String
    @Option(help: "How many entries, newest first.") var limit = 30
    @Flag(help: "Print a JSON array of objects instead of a table.") var json = false

    func validate() throws {
        do { _ = try AgentName(name) } catch { throw ValidationError(error.description) }
        guard (1...WireLimits.maxListLimit).contains(limit) else { throw ValidationError("--limit must be from 1 to \(WireLimits.maxListLimit)") }
    }

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(GatewayLogCommand(agent: name, limit: limit))
            let entries = reply.entries
            if json { return printJSON(reply) }
            if entries.isEmpty { return print("(nothing through \(name)'s gateway yet: its network may be host or none; see hive ls)") }
            print("spend through the gateway: " + reply.spend.map { s in
                String(format: "%@ $%.4f (%d answers)", s.period, s.usd, s.answers)
                    + (s.byFamily.isEmpty ? "" : "; priced by family: \(s.byFamily.joined(separator: ", "))")
                    + (s.unpriced.isEmpty ? "" : "; NOT PRICED: \(s.unpriced.joined(separator: ", "))")
            }.joined(separator: " · "))
            print("prices: \(reply.prices) (<root>/prices.json overrides)\n")
            let time = DateFormatter()
            time.dateFormat = "MM-dd HH:mm:ss"
            var rows = [["AT", "KIND", "DESTINATION", "", "STATUS", "OUT", "IN", "TOKENS (in/out/cache w/r)", "USD", "NOTE"]]
            rows += entries.map { e in
                let tokens = e.usage.map { "\($0.input)/\($0.output)/\($0.cacheWriteShort + $0.cacheWriteLong)/\($0.cacheRead)" } ?? ""
                return [time.string(from: Date(timeIntervalSince1970: e.at)), e.kind.rawValue, String(e.destination.prefix(40)),
                        e.allowed ? "allowed" : "REFUSED", e.status.map(String.init) ?? "", String(e.bytesOut), String(e.bytesIn), tokens,
                        e.usd.map { String(format: "%.4f", $0) } ?? "",
                        String(e.note.replacingOccurrences(of: "\n", with: " ").prefix(70))]
            }
            printTable(rows)
        }
    }
}
