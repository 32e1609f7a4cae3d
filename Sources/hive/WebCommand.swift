import ArgumentParser
import AsyncHTTPClient
import Foundation
import HiveClient
import HiveHost
import HiveMetrics
import HiveWeb
import HiveWire
import Logging
import ServiceLifecycle

struct Web: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web",
        abstract: "Serve the dashboard: an unprivileged process that reaches the hive only through <run-dir>/web.sock.",
        discussion: """
            `hive up` starts it for you. Started as root it runs itself again as uid/gid \(WebSurface.uid) (no
            other groups) before it listens. A session cookie is opened by a secret: on loopback the dashboard
            token in <run-dir>/dashboard-token (open <url>/login?token=…, as `hive up` prints), on any other
            address the operator password (--password-file, read before privileges are dropped). Every POST
            carries a CSRF token. One origin: / is the dashboard, /agent/<name>/ each agent's own page,
            /forge/ the forge. Put nginx in front for TLS: `hive nginx-config`, then `hive web --behind-proxy`.
            """)

    @OptionGroup var hive: RunDirOption
    @Option(help: ArgumentHelp("Where to listen.", valueName: "host:port")) var listen = "127.0.0.1:7000"
    @Option(name: .customLong("password-file"), help: ArgumentHelp("A file holding the operator password (required off loopback).", valueName: "file"))
    var passwordFile: String?
    @Flag(name: .customLong("behind-proxy"), help: "nginx from `hive nginx-config` fronts this: believe the client address and scheme it forwards (for the login throttle and Secure cookies), on requests carrying its secret (<run-dir>/proxy-secret) only.")
    var behindProxy = false
    @Flag(help: "Started by `hive up`: stdin is a pipe from it, and the web process stops when it closes.") var supervised = false
    /// Set on the unprivileged re-execution: the secret it inherits is an operator password (throttled).
    @Flag(name: .customLong("inherited-password"), help: .hidden) var inheritedPassword = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: Logger.Level = .info

    func run() async throws {
        Log.bootstrap(level: logLevel)
        HiveMetrics.bootstrap()
        let logger = Logger(label: "hive.web")
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else {
            throw fail(RequestError("--listen takes HOST:PORT, e.g. 127.0.0.1:7000"))
        }
        let host = String(listen[..<colon])
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host)
        // The secret that opens a session: the operator password off loopback, the dashboard token on it.
        var secret: String? = PrivilegeDrop.inheritedPassword()
        if secret == nil {
            if let passwordFile {
                secret = (try? String(contentsOfFile: passwordFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                guard let p = secret, p.count >= 8 else { throw fail(RequestError("\(passwordFile): no password of at least 8 characters there")) }
            } else if !loopback {
                throw fail(RequestError("--listen \(listen) is not loopback: give an operator password with --password-file"))
            } else {
                do { secret = try DashboardToken.load(runDir: hive.resolved) } catch { throw fail(error) }
            }
        }
        let password = secret!
        do {
            // Made (as root, before the drop) if missing; the unprivileged process reads it by its group.
            let proxySecret = behindProxy ? try ProxySecret.load(runDir: hive.resolved) : nil
            if getuid() == 0 || geteuid() == 0 {
                var args = ["web", "--run-dir", hive.resolved.path, "--listen", listen, "--log-level", logLevel.rawValue]
                if supervised { args.append("--supervised") }
                if behindProxy { args.append("--behind-proxy") }
                if passwordFile != nil { args.append("--inherited-password") }
                try PrivilegeDrop.reexec(as: WebSurface.uid, arguments: args, password: password)
            }
            if supervised { Lifeline.watchStandardInput(logger: logger) }
            let core = CoreLink(socket: HiveLayout.webSocket(in: hive.resolved).path)
            let forge = try? await core.call(SnapshotCommand()).forge
            // Agents' live streams and git transfers hold connections for long: room for many per upstream.
            var config = HTTPClient.Configuration()
            config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
            let relay = FeedRelay(core: core)
            let app = WebServer.application(core: core, relay: relay, runDir: hive.resolved, host: host, port: port,
                                            auth: WebAuth(secret: password), logins: .init(password: passwordFile != nil || inheritedPassword, proxySecret: proxySecret),
                                            forge: forge ?? nil, client: client, logger: logger)
            logger.info("dashboard on http://\(listen)/ (uid \(getuid()))")
            // The relay stops first (services stop in reverse order): its end finishes every open event stream.
            let group = ServiceGroup(services: [app, relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
            try await client.shutdown()
        } catch {
            throw fail(error)
        }
    }
}
