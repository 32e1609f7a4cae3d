import ArgumentParser
import Foundation
import HiveHost
import HiveWire

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Store a Claude credential once for the whole hive (read from stdin, never from the command line).",
        discussion: """
            Paste an OAuth token from `claude setup-token` (a Claude subscription; sk-ant-oat…) or an API key
            (sk-ant-api…) on stdin: `hive login < token.txt`, or type it and press Ctrl-D. It is kept in
            <root>/credentials/<name>.json, readable by its owner only, and handed to each agent's claude in
            its environment when its cage starts (restart agents to pick up a new one). Agents use
            `default` unless their agent.json names another (`"credential": "team-b"`).
            `hive login --list` names what is stored; `hive login --remove NAME` forgets one.
            """)

    @Option(help: ArgumentHelp("The hive root. Default: $HIVE_ROOT, else /var/lib/hyperhive as root, else ~/.local/share/hyperhive.", valueName: "dir"))
    var root: String?
    @Option(help: "The credential's name (1–32 of a-z 0-9 _ -).") var name = "default"
    @Flag(help: "List the stored credentials (names and kinds, never secrets).") var list = false
    @Option(help: ArgumentHelp("Forget the named credential.", valueName: "name")) var remove: String?

    func validate() throws {
        guard StoredCredential.isName(name) else { throw ValidationError("--name: 1–32 of a-z 0-9 _ -") }
        if let remove, !StoredCredential.isName(remove) { throw ValidationError("--remove: 1–32 of a-z 0-9 _ -") }
    }

    func run() async throws {
        let rootURL = root.map { URL(filePath: $0) } ?? Defaults.root
        let layout = HiveLayout(root: rootURL, runDir: Defaults.runDir(root: rootURL))
        try await operatorVerb {
            if list {
                let names = StoredCredential.names(in: layout)
                if names.isEmpty { return print("no credentials stored (hive login)") }
                for n in names {
                    let kind = StoredCredential.load(n, in: layout).map { $0.kind == .oauthToken ? "subscription (OAuth token)" : "API key" } ?? "unreadable"
                    print("\(n): \(kind)")
                }
                return
            }
            if let remove {
                try FileManager.default.removeItem(at: StoredCredential.file(remove, in: layout))
                return print("forgot \(remove); agents using it need another (restart them after hive login)")
            }
            if isatty(0) != 0 { FileHandle.standardError.write(Data("Paste the token or key, then Enter and Ctrl-D:\n".utf8)) }
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile().prefix(4096), as: UTF8.self)
            let credential = try StoredCredential(secret: input)
            try credential.store(as: name, in: layout)
            print("stored '\(name)' (\(credential.kind == .oauthToken ? "subscription OAuth token" : "API key")) in \(layout.credentialsDir.path); restart agents to use it (hive restart --all)")
        }
    }
}
