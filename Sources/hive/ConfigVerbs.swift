import ArgumentParser
import Foundation
import HiveClient
import HiveWire

struct Pending: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pending",
        abstract: "List config changes waiting for your approval, with their diffs.",
        discussion: """
            The manager asks for two kinds: init_config (seed a new agent's config repo from the template)
            and apply_commit (deploy a commit of an agent's config repo; its diff against what runs now is
            shown). Approve with `hive approve ID`, refuse with `hive deny ID --note "why"`.
            A new agent takes two approvals: init_config, then its first apply_commit creates it.
            """)
    @OptionGroup var hive: RunDirOption
    @Flag(help: "Also show the 50 most recently resolved ones.") var all = false
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() async throws {
        try await operatorVerb {
            let approvals = try await hive.connect().call(PendingCommand(all: all ? true : nil)).approvals
            if json { return printJSON(approvals) }
            if approvals.isEmpty { return print(all ? "no approvals yet" : "nothing waits for your approval") }
            for a in approvals { print(Self.describe(a)) }
        }
    }

    static func describe(_ a: ApprovalView) -> String {
        var lines = ["#\(a.id) \(a.kind) \(a.agent) — \(a.state)\(a.commit.map { " (commit \($0.prefix(12)))" } ?? "")"]
        if let d = a.description, !d.isEmpty { lines.append("  why: \(d)") }
        if let n = a.note { lines.append("  note: \(n)") }
        if let diff = a.diff, a.state == .pending { lines.append(diff.split(separator: "\n", omittingEmptySubsequences: false).map { "  │ \($0)" }.joined(separator: "\n")) }
        return printable(lines.joined(separator: "\n"))
    }

    /// What the manager wrote, made safe for a terminal: control characters (escape sequences could
    /// redraw what the operator is approving) are shown as `\u{..}` instead of acted on.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.flatMap { c -> [Unicode.Scalar] in
            if c == "\n" || c == "\t" || !(c.properties.generalCategory == .control || c.properties.generalCategory == .format) { return [c] }
            return Array("\\u{\(String(c.value, radix: 16))}".unicodeScalars)
        }.map(Character.init))
    }
}

struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a pending config change; it is carried out before this returns.",
        discussion: """
            init_config: the agent's config repo is seeded and the manager told config_ready.
            apply_commit: the commit is tagged approved/ID, its agent.json checked, the cage re-rendered and
            restarted (created, for a new agent); success tags deployed/ID, failure tags failed/ID and the
            previous config keeps running. Either way the manager is told.
            """)
    @OptionGroup var hive: RunDirOption
    @Argument(help: "The approval's id (see hive pending).") var id: Int64

    func run() async throws {
        try await operatorVerb {
            let a = try await hive.connect().call(ApproveCommand(id: id)).approval
            print(Pending.describe(a))
            if a.state == .failed { throw ExitCode(2) }
        }
    }
}

struct Deny: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deny", abstract: "Refuse a pending config change; the manager gets your note.")
    @OptionGroup var hive: RunDirOption
    @Argument(help: "The approval's id (see hive pending).") var id: Int64
    @Option(help: "Why: the manager reads this.") var note: String?

    func run() async throws {
        try await operatorVerb { print(Pending.describe(try await hive.connect().call(DenyCommand(id: id, note: note)).approval)) }
    }
}

struct RebuildAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Re-render an agent's cage from its applied config and restart it; --all for every agent (the manager first).")
    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent (or use --all).") var name: String?
    @Flag(help: "Rebuild every live agent: the manager first, then the others, and the manager is told.") var all = false
    func validate() throws {
        guard (name == nil) == all else { throw ValidationError("name an agent or pass --all") }
        if let name { do { _ = try AgentName(name) } catch { throw ValidationError(error.description) } }
    }
    func run() async throws {
        try await operatorVerb {
            let r = try await hive.connect().call(RebuildCommand(name: name, all: all ? true : nil))
            print("rebuilt \(r.restarted.joined(separator: ", "))")
        }
    }
}

struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Show the recent output of an agent's cage (its harness log, claude's stderr).")
    @OptionGroup var hive: RunDirOption
    @OptionGroup var agent: AgentArgument
    @Option(name: [.short, .customLong("lines")], help: "How many lines (at most 2000).") var lines = 50

    func run() async throws {
        try await operatorVerb {
            for line in try await hive.connect().call(LogsCommand(name: agent.name, lines: lines)).lines { print(line) }
        }
    }
}

struct ForgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forge",
        abstract: "The hive's private git forge: its repos.",
        discussion: """
            Agents create repos through the forge's API (Gitea-shaped, under <forge>/api/v1) and push with
            plain git from their cages; their token is set up for them. The operator's admin token is in
            <root>/forge/admin-token. shared/docs is for runbooks, prompts and skills every agent reads.
            """,
        subcommands: [ForgeRepos.self])
}

struct ForgeRepos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repos", abstract: "List every repo on the forge with its last commit.")
    @OptionGroup var hive: RunDirOption
    @Flag(help: "Print JSON instead of a table.") var json = false

    func run() async throws {
        try await operatorVerb {
            let reply = try await hive.connect().call(ForgeReposCommand())
            if json { return printJSON(reply.repos) }
            print("forge: \(reply.url)")
            let clock = DateFormatter()
            clock.dateFormat = "yyyy-MM-dd HH:mm"
            var rows = [["REPO", "LAST COMMIT", "WHEN", "MESSAGE"]]
            rows += reply.repos.map { r in
                [r.fullName, r.lastCommit.map { String($0.prefix(10)) } ?? "(empty)",
                 r.lastCommitAt.map { clock.string(from: Date(timeIntervalSince1970: $0)) } ?? "",
                 Pending.printable(String((r.lastMessage ?? "").prefix(60)))]
            }
            printTable(rows)
        }
    }
}

struct ModelVerb: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Run an agent on another model from its next turn on, without a config change.",
        discussion: """
            `hive model iris opus` makes iris's turns use opus instead of the model its agent.json names;
            `hive model iris --clear` goes back to the config's. The choice is the operator's alone (an agent
            cannot make it), survives restarts, and is dropped when a new config is deployed for the agent.
            The agent's page has the same control.
            """)
    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent.") var agent: String
    @Argument(help: "The model (e.g. sonnet, opus, claude-sonnet-4-5).") var model: String?
    @Flag(help: "Go back to the config's model.") var clear = false

    func validate() throws {
        guard (model == nil) != !clear else { throw ValidationError("give a model, or --clear") }
        if let model, !AgentConfig.isModelName(model) {
            throw ValidationError("'\(model)' is not a model name (letters, digits and . _ : - [ ])")
        }
    }

    func run() async throws {
        try await operatorVerb {
            let r = try await hive.connect().call(SetModelCommand(agent: agent, model: clear ? nil : model))
            print(r.model.map { "\(r.agent) runs on \($0) from its next turn (its config says \(r.configModel))" }
                  ?? "\(r.agent) runs on its config's model, \(r.configModel), from its next turn")
        }
    }
}

struct ResumeVerb: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Let agents that wait for you (needs_billing) try again now.",
        discussion: """
            An agent whose claude says the credit balance is too low, or that a spending limit of $0 is set,
            stops retrying and shows needs_billing in `hive ls`: every retry would fail the same way. Fix the
            billing, then `hive resume iris` (or `--all`). A turn that succeeds clears the state too; without
            a resume the agent tries one turn an hour.
            """)
    @OptionGroup var hive: RunDirOption
    @Argument(help: "The agent.") var agent: String?
    @Flag(help: "Every agent.") var all = false

    func validate() throws {
        guard (agent == nil) == all else { throw ValidationError("name an agent, or --all") }
    }

    func run() async throws {
        try await operatorVerb {
            let r = try await hive.connect().call(ResumeCommand(agent: agent, all: all))
            print(r.resumed.isEmpty ? "no agents" : "resuming \(r.resumed.joined(separator: ", "))")
        }
    }
}
