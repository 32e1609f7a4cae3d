import ArgumentParser
import Foundation
import HiveCore
import HiveHost
import HiveClient
import Logging

/// Where a hive lives when nobody says otherwise.
enum Defaults {
    /// The root a hive run by root uses: outside root's home (0700 on Debian, so agents' uids could not
    /// reach their own directories through it), the same one a service install uses.
    static let systemRoot = URL(filePath: ServiceUnits().root)

    /// Where a service install's sockets are (`RuntimeDirectory=` of its unit).
    static let serviceRunDir = URL(filePath: ServiceUnits().runDir)

    /// `$HIVE_ROOT`, else as root `/var/lib/hyperhive`, else `$XDG_DATA_HOME/hyperhive`, else
    /// `~/.local/share/hyperhive`.
    static var root: URL {
        let env = ProcessInfo.processInfo.environment
        if let r = env["HIVE_ROOT"], !r.isEmpty { return URL(filePath: r) }
        if getuid() == 0 { return systemRoot }
        if let x = env["XDG_DATA_HOME"], !x.isEmpty { return URL(filePath: x).appending(path: "hyperhive") }
        return FileManager.default.homeDirectoryForCurrentUser.appending(path: ".local/share/hyperhive")
    }

    /// `<root>/run` for the given (or default) root.
    static func runDir(root: URL? = nil) -> URL { HiveLayout.defaultRunDir(root: root ?? Self.root) }
}

/// `--run-dir`, shared by every verb that talks to a running hive.
struct RunDirOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The hive's run dir, holding host.sock. Default: $HIVE_RUN_DIR, else /run/hyperhive for a service install, else <root>/run of the default root.",
        valueName: "dir"))
    var runDir: String?

    var resolved: URL {
        if let runDir { return URL(filePath: runDir) }
        if let env = ProcessInfo.processInfo.environment["HIVE_RUN_DIR"], !env.isEmpty { return URL(filePath: env) }
        // A service install (`hive install`) keeps its sockets in /run/hyperhive.
        if Defaults.root == Defaults.systemRoot, FileManager.default.fileExists(atPath: HiveLayout.adminSocket(in: Defaults.serviceRunDir).path) {
            return Defaults.serviceRunDir
        }
        return Defaults.runDir()
    }

    /// A connection to the admin socket, or a clear error.
    func connect() throws -> HiveConnection {
        try HiveConnection(path: HiveLayout.adminSocket(in: resolved).path)
    }
}

/// Sends logs to stderr (stdout belongs to command output and, for `hive mcp`, to the MCP channel).
enum Log {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Prints `error` on stderr as `hive: <message>` and exits non-zero.
func fail(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("hive: \(error)\n".utf8))
    return ExitCode(1)
}

/// Runs `body`, turning any failure into a one-line message on stderr and exit code 1.
func operatorVerb(_ body: () async throws -> Void) async throws {
    do { try await body() } catch let e as ExitCode { throw e } catch { throw fail(error) }
}
