import ArgumentParser
import AsyncHTTPClient
import Foundation
import HiveClient
import HiveWeb
import HiveWire
import Logging
import ServiceLifecycle

struct Web: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web",
        abstract: "Serve the dashboard: an unprivileged process that reaches the hive only through <run-dir>/web.sock.",
        discussion: """
            `hive up` starts it for you. Started as root it becomes uid/gid \(WebSurface.uid) (no other groups)
            before it listens. On loopback there is no login; on any other address an operator password is
            required (--password-file, read before privileges are dropped), with a session cookie and a CSRF
            token on every POST. One origin: / is the dashboard, /agent/<name>/ each agent's own page,
            /forge/ the forge. Put nginx in front for TLS (`hive nginx-config` is planned).
            """)

    @OptionGroup var hive: RunDirOption
    @Option(help: ArgumentHelp("Where to listen.", valueName: "host:port")) var listen = "127.0.0.1:7000"
    @Option(name: .customLong("password-file"), help: ArgumentHelp("A file holding the operator password (required off loopback).", valueName: "file"))
    var passwordFile: String?
    @Flag(help: "Started by `hive up`: stdin is a pipe from it, and the web process stops when it closes.") var supervised = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info

    func run() async throws {
        Log.bootstrap(level: logLevel)
        let logger = Logger(label: "hive.web")
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else {
            throw fail(RequestError("--listen takes HOST:PORT, e.g. 127.0.0.1:7000"))
        }
        let host = String(listen[..<colon])
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
        var password: String? = PrivilegeDrop.inheritedPassword()
        if let passwordFile, password == nil {
            password = (try? String(contentsOfFile: passwordFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let p = password, p.count >= 8 else { throw fail(RequestError("\(passwordFile): no password of at least 8 characters there")) }
        } else if !loopback && password == nil {
            throw fail(RequestError("--listen \(listen) is not loopback: give an operator password with --password-file"))
        }
        do {
            if getuid() == 0 || geteuid() == 0 {
                var args = ["web", "--run-dir", hive.resolved.path, "--listen", listen, "--log-level", logLevel.rawValue]
                if supervised { args.append("--supervised") }
                try PrivilegeDrop.reexec(as: WebSurface.uid, arguments: args, password: password)
            }
            if supervised { Lifeline.watchStandardInput(logger: logger) }
            let core = CoreLink(socket: hive.resolved.appending(path: "web.sock").path)
            let forge = try? await core.call(SnapshotCommand()).forge
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let app = WebServer.application(core: core, runDir: hive.resolved, host: host, port: port, auth: WebAuth(password: password),
                                            forge: forge ?? nil, client: client, logger: logger)
            logger.info("dashboard on http://\(listen)/ (uid \(getuid()))")
            let group = ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
            try await client.shutdown()
        } catch {
            throw fail(error)
        }
    }
}
