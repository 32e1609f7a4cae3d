import ArgumentParser
import Foundation
import HiveCore
import HiveHost
import HiveWire

struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this host for what agents need, and print the fix for each problem.",
        discussion: """
            Checks bubblewrap (and that a test cage starts: user namespaces), cgroups, the claude executable
            (native binary, a ~/.local/bin symlink, or an npm install whose node the cages can see) and its
            version against the one the tests pinned, a login, free disk, and whether agents' uids can
            reach the hive root. Exit status 1 when anything blocks agents. `hive up` prints the blocking
            findings too.
            """)

    @Option(help: ArgumentHelp("The hive root. Default: $HIVE_ROOT, else /var/lib/hyperhive as root, else ~/.local/share/hyperhive.", valueName: "dir"))
    var root: String?

    func run() async throws {
        let rootURL = root.map { URL(filePath: $0) } ?? Defaults.root
        let stored = !StoredCredential.names(in: HiveLayout(root: rootURL, runDir: Defaults.runDir(root: rootURL))).isEmpty
        let findings = HostDoctor.run(root: rootURL, environment: ProcessInfo.processInfo.environment, credentialsStored: stored)
        print(Self.render(findings, all: true))
        if findings.contains(where: { $0.level == .blocking }) { throw ExitCode(1) }
    }

    /// One line per finding (`all: false`: only what needs attention), fixes indented below.
    static func render(_ findings: [HostDoctor.Finding], all: Bool) -> String {
        findings.filter { all || $0.level != .ok }.map { f in
            let mark = ["ok": "ok  ", "warning": "WARN", "blocking": "FAIL"][f.level.rawValue]!
            return "\(mark) \(f.check): \(f.detail)" + (f.fix.map { "\n       fix: \($0)" } ?? "")
        }.joined(separator: "\n")
    }
}
