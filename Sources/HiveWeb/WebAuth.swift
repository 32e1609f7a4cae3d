import Foundation
import Synchronization

/// Operator access to the dashboard: a session cookie opened by a secret. Off loopback the secret is the
/// operator's password (`hive web --password-file`); on loopback it is the dashboard token in
/// `<run-dir>/dashboard-token` (root's; `hive up` prints a login link with it), because loopback is not
/// private here: agents with host network, and other local users, reach it too. Every POST must carry the
/// CSRF token of the session's page (`X-Hive-CSRF`), which a page of another origin cannot read.
public final class WebAuth: Sendable {
    let password: String
    private let sessions = Mutex([String: (csrf: String, expires: Date)]())
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
        sessions.withLock { s in
            s = s.filter { $0.value.expires > Date() } // expired sessions go on every login
            s[id] = (Self.randomToken(), Date().addingTimeInterval(Self.lifetime))
        }
        return id
    }

    func logout(_ id: String) { sessions.withLock { _ = $0.removeValue(forKey: id) } }

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

/// The loopback dashboard's secret: `<run-dir>/dashboard-token`, made on first use (0600, root's when
/// root runs the hive), read by `hive web` before it gives up root and by `hive up` for its login link.
public enum DashboardToken {
    public static func load(runDir: URL) throws -> String {
        let file = runDir.appending(path: "dashboard-token")
        if let text = try? String(contentsOf: file, encoding: .utf8), text.trimmingCharacters(in: .whitespacesAndNewlines).count >= 32 {
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let token = WebAuth.randomToken()
        try? FileManager.default.removeItem(at: file)
        guard FileManager.default.createFile(atPath: file.path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw WebError("cannot write \(file.path)")
        }
        return token
    }
}
