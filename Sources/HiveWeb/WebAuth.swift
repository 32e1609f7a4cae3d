import Foundation
import HiveWire
import Synchronization

/// Operator access to the dashboard: a session cookie opened by a secret. Off loopback the secret is the
/// operator's password (`hive web --password-file`); on loopback it is the dashboard token in
/// `<run-dir>/dashboard-token` (root's; `hive up` prints a login link with it), because loopback is not
/// private here: agents with host network, and other local users, reach it too. Every POST must carry the
/// CSRF token of the session's page (`X-Hive-CSRF`), which a page of another origin cannot read.
public final class WebAuth: Sendable {
    let password: String
    private let sessions = Mutex([String: (csrf: String, expires: Date)]())
    /// Capabilities for agents' pages: an unguessable path part that stands for (session, agent).
    private let capabilities = Mutex([String: (agent: String, session: String)]())
    static let cookie = "hive_session"
    static let lifetime: TimeInterval = 12 * 3600

    public init(secret: String) { self.password = secret }

    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    /// The session a cookie header names, with its CSRF token; nil when login is required and there is none.
    func session(cookieHeader: String?) -> (id: String?, csrf: String)? {
        guard let id = Self.cookieValue(cookieHeader, Self.cookie) else { return nil }
        return sessions.withLock { s -> (String?, String)? in
            guard let entry = s[id], entry.expires > Date() else { s[id] = nil; return nil }
            return (id, entry.csrf)
        }
    }

    /// Checks a login attempt; on success returns a new session id.
    func login(password attempt: String) -> String? {
        guard Self.constantTimeEqual(attempt, password) else { return nil }
        let id = Self.randomToken()
        let live = sessions.withLock { s -> Set<String> in
            s = s.filter { $0.value.expires > Date() } // expired sessions go on every login
            s[id] = (Self.randomToken(), Date().addingTimeInterval(Self.lifetime))
            return Set(s.keys)
        }
        capabilities.withLock { $0 = $0.filter { live.contains($0.value.session) } }
        return id
    }

    func logout(_ id: String) {
        sessions.withLock { _ = $0.removeValue(forKey: id) }
        capabilities.withLock { $0 = $0.filter { $0.value.session != id } }
    }

    /// The capability of `session` for `agent`'s page (made once, then reused). Agents' pages run in a
    /// sandbox with an opaque origin, so the browser sends them no cookie; the capability in their path
    /// is what lets them load their own data, and only their own: one agent's page cannot name another's.
    func agentCapability(session: String, agent: String) -> String {
        capabilities.withLock { caps in
            if let found = caps.first(where: { $0.value == (agent, session) })?.key { return found }
            let cap = Self.randomToken()
            caps[cap] = (agent, session)
            return cap
        }
    }

    /// The agent a capability opens, while its session lives.
    func agent(capability: String) -> String? {
        guard let entry = capabilities.withLock({ $0[capability] }) else { return nil }
        let alive = sessions.withLock { $0[entry.session].map { $0.expires > Date() } ?? false }
        return alive ? entry.agent : nil
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }

    static func cookieValue(_ header: String?, _ name: String) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2, kv[0] == name { return kv[1] }
        }
        return nil
    }
}

/// Password guesses per client: after `limit` attempts that did not succeed in `window` seconds a client
/// is refused (429) without its password being checked, until the window has passed. A client is the
/// peer address, or, behind a proxy (`hive web --behind-proxy`), the address the proxy on loopback
/// forwarded. Only the operator password is throttled: the dashboard token cannot be guessed, and
/// throttling it would let anything on loopback lock the operator out.
final class LoginThrottle: Sendable {
    let limit: Int
    let window: Double
    /// Most clients tracked at once; past it the oldest entries go first.
    let capacity: Int
    private let attempts = Mutex([String: (count: Int, since: Double)]())

    init(limit: Int = 10, window: Double = 600, capacity: Int = 10_000) {
        self.limit = limit; self.window = window; self.capacity = capacity
    }

    /// Counts an attempt by `client` before its password is checked (so parallel attempts cannot slip
    /// past the limit): nil when it may go ahead, else the seconds until it may try again.
    func admit(_ client: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        attempts.withLock { a in
            if let entry = a[client], now - entry.since < window {
                if entry.count >= limit { return entry.since + window - now }
                a[client] = (entry.count + 1, entry.since)
                return nil
            }
            if a.count >= capacity {
                a = a.filter { now - $0.value.since < window }
                if a.count >= capacity { // a spray of addresses: forget the oldest half
                    for key in a.sorted(by: { $0.value.since < $1.value.since }).prefix(capacity / 2).map(\.key) { a[key] = nil }
                }
            }
            a[client] = (1, now)
            return nil
        }
    }

    /// A successful login: the client's count starts again.
    func succeeded(_ client: String) { attempts.withLock { _ = $0.removeValue(forKey: client) } }
}

/// The loopback dashboard's secret: `<run-dir>/dashboard-token`, made on first use (0600, root's when
/// root runs the hive), read by `hive web` before it gives up root and by `hive up` for its login link.
public enum DashboardToken {
    public static func load(runDir: URL) throws -> String {
        try RunDirSecret.load(runDir.appending(path: "dashboard-token"), groupReadable: false)
    }
}

/// What nginx (from `hive nginx-config`) sends in ``header`` on every request it proxies, so `hive web
/// --behind-proxy` believes its `X-Forwarded-For` and `X-Forwarded-Proto` and nobody else's: anything
/// on loopback (an agent with host network, any local user) can send those headers. It lives in
/// `<run-dir>/proxy-secret`, made on first use: 0640, root's and the web process's group when root runs
/// the hive, so the unprivileged web process reads it itself.
public enum ProxySecret {
    public static let header = "X-Hive-Proxy"
    public static func load(runDir: URL) throws -> String {
        try RunDirSecret.load(runDir.appending(path: "proxy-secret"), groupReadable: true)
    }
}

enum RunDirSecret {
    static func load(_ file: URL, groupReadable: Bool) throws -> String {
        if let text = try? String(contentsOf: file, encoding: .utf8), text.trimmingCharacters(in: .whitespacesAndNewlines).count >= 32 {
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let token = WebAuth.randomToken()
        try? FileManager.default.removeItem(at: file)
        guard FileManager.default.createFile(atPath: file.path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw WebError("cannot write \(file.path)")
        }
        if groupReadable {
            if getuid() == 0 { _ = chown(file.path, 0, gid_t(WebSurface.uid)) }
            _ = chmod(file.path, 0o640)
        }
        return token
    }
}
