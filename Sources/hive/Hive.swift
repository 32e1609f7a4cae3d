import ArgumentParser

/// The `hive` command: every process and operator verb of Hyperhive.
@main
struct Hive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hive",
        abstract: "Run and steer a swarm of long-lived Claude Code agents on one host.",
        discussion: """
            Start a hive on this machine with `hive up` (try `hive up --demo` without a Claude login). \
            Talk to it from another shell with the operator verbs: they reach the hive through its admin \
            socket, <run-dir>/host.sock, so pass --run-dir or set HIVE_RUN_DIR when the hive does not use \
            the default. `hive <verb> --help` explains each one.
            """,
        subcommands: [
            List.self, Nodes.self, Move.self, SendMessage.self, Inbox.self, Spawn.self, Destroy.self, Stats.self, Search.self, BudgetVerb.self, Backup.self, Restore.self, Net.self, Reminders.self, CancelReminder.self,
            StartAgent.self, StopAgent.self, RestartAgent.self, RebuildAgent.self, ReviveAgent.self, Logs.self,
            Pending.self, Approve.self, Deny.self, Questions.self, Answer.self, ModelVerb.self, ResumeVerb.self, Doctor.self, Login.self, Install.self, Uninstall.self, ForgeCommand.self, NginxConfig.self,
            DemoClaude.self,
        ],
        groupedSubcommands: [
            CommandGroup(name: "Running a hive", subcommands: [Up.self, Core.self, Web.self, Agent.self, MCPServe.self]),
        ])
}
