import ArgumentParser
import Foundation
import HiveCore
import HiveHost

/// Whether systemd runs this host (then the install starts, restarts and stops the units itself).
private var systemdBooted: Bool { FileManager.default.fileExists(atPath: "/run/systemd/system") }

private func systemctl(_ args: [String]) throws {
    let r = try ChildProcess.run("/usr/bin/systemctl", args, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"])
    guard r.status == 0 else { throw ValidationError("systemctl \(args.joined(separator: " ")) failed: \(String(decoding: r.stderr, as: UTF8.self).prefix(300))") }
}

/// `--prefix`: shared by install and uninstall.
struct PrefixOption: ParsableArguments {
    @Option(help: ArgumentHelp("""
        Lay the files out under DIR instead of / (a package build or a test); the files still name the \
        final paths, and nothing is started or stopped.
        """, valueName: "dir"))
    var prefix = "/"

    var url: URL { URL(filePath: prefix) }
    var onHost: Bool { url.standardizedFileURL.path == "/" }

    func validate() throws {
        if onHost && getuid() != 0 { throw ValidationError("a service install is root's: run it with sudo, or --prefix DIR to lay it out in a directory") }
    }
}

struct Install: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install the hive as systemd services, or upgrade an install to this binary.",
        discussion: """
            Writes hyperhive.service (hive core) and hyperhive-web.service (the dashboard, which drops to the \
            hyperhive-web account), that account (systemd-sysusers), /etc/hyperhive/hyperhive.env for settings \
            and credentials (0600; kept if it exists), /var/lib/hyperhive for the data and /run/hyperhive for \
            the sockets; copies this binary to /usr/local/lib/hyperhive/hive-<hash> and links \
            /usr/local/bin/hive to it. Then enables and starts both units.

            Over an existing install this is the upgrade: the hive is backed up first \
            (/var/lib/hyperhive-backups/pre-upgrade-<time>), the link moves to the new binary (the old one \
            is kept), and the running units are restarted: core runs its migrations and puts every message \
            handed out but not acked back in the inboxes; agents restart on the new binary. \
            `hive install --rollback` points the link back (see docs/operations.md for when the backup is \
            needed too).

            Logs go to the journal: journalctl -u hyperhive -u hyperhive-web -f.
            """)

    @OptionGroup var target: PrefixOption
    @Option(help: ArgumentHelp("The binary to install. Default: this one.", valueName: "path")) var binary: String?
    @Option(help: ArgumentHelp("Where the dashboard listens, for a new settings file.", valueName: "host:port")) var listen = "127.0.0.1:7000"
    @Flag(name: .customLong("no-start"), help: "Write and enable the units but start nothing.") var noStart = false
    @Flag(name: .customLong("no-backup"), help: "Upgrade without the backup taken first (not recommended).") var noBackup = false
    @Flag(help: "Point /usr/local/bin/hive back at the binary the last install replaced, and restart.") var rollback = false

    func run() async throws {
        try await operatorVerb {
            var installer = ServiceInstaller(prefix: target.url)
            installer.units.listen = listen
            let restart = target.onHost && systemdBooted
            if rollback {
                let (from, to) = try installer.rollback()
                print("rolled back: \(installer.units.binary) -> \(to) (was \(from))")
                if restart { try systemctl(["try-restart", ServiceUnits.coreUnit]) ; print("restarted \(ServiceUnits.coreUnit)") }
                return
            }
            let me = binary.map { URL(filePath: $0) } ?? URL(filePath: "/proc/self/exe").resolvingSymlinksInPath()
            let report = try installer.install(binary: me, backup: !noBackup)
            if let backup = report.backup { print("backup     \(backup) (taken before the upgrade: the rollback point)") }
            report.lines.forEach { print($0) }
            let units = [ServiceUnits.coreUnit, ServiceUnits.webUnit]
            if restart {
                try systemctl(["daemon-reload"])
                try systemctl(["enable"] + units)
                if report.upgraded {
                    try systemctl(["try-restart", ServiceUnits.coreUnit])
                    print("upgraded: restarted \(ServiceUnits.coreUnit) (and the dashboard with it)")
                } else if !noStart {
                    try systemctl(["start"] + units)
                    print("started: \(units.joined(separator: ", ")); logs: journalctl -u hyperhive -u hyperhive-web -f")
                }
            } else if target.onHost {
                print("""
                    systemd is not running on this host: the units are written but nothing was started. Run the hive with
                      \(installer.units.binary) core --root \(installer.units.root) --run-dir \(installer.units.runDir)
                    and the dashboard with
                      \(installer.units.binary) web --run-dir \(installer.units.runDir) --listen \(listen)
                    """)
            }
            print("then: hive ls   (operator verbs find \(installer.units.runDir) by themselves as root; others: export HIVE_RUN_DIR=\(installer.units.runDir))")
        }
    }
}

struct Uninstall: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop and remove the hyperhive services; the data stays unless --purge.",
        discussion: """
            Removes the units, the binaries and the link; keeps /var/lib/hyperhive (agents, messages, forge) \
            and /etc/hyperhive (settings, credentials) so a later install carries on. --purge removes those \
            too (refused while a core runs). Backups in /var/lib/hyperhive-backups are never removed.
            """)

    @OptionGroup var target: PrefixOption
    @Flag(help: "Remove the data and settings too.") var purge = false

    func run() async throws {
        try await operatorVerb {
            let installer = ServiceInstaller(prefix: target.url)
            let units = [ServiceUnits.webUnit, ServiceUnits.coreUnit]
            if target.onHost && systemdBooted {
                try? systemctl(["disable", "--now"] + units)
            }
            try installer.uninstall(purge: purge).forEach { print($0) }
            if target.onHost && systemdBooted { try? systemctl(["daemon-reload"]) }
        }
    }
}
