import Foundation
import Synchronization

/// Operator access to the dashboard. On loopback nobody logs in; anywhere else a password (set at
/// install, given to `hive web --password-file`) opens a session cookie. Every POST must carry the CSRF
/// token of the page it came from (`X-Hive-CSRF`), which a page of another origin cannot read.
public final class WebAuth: Sendable {
    /// Nil: no login (loopback).
    let password: String?
    /// The CSRF token for the no-login case (one per process).
    let processToken = WebAuth.randomToken()
    private let sessions = Mutex([String: (csrf: String, expires: Date)]())
    static let cookie = "hive_session"
    static let lifetime: TimeInterval = 12 * 3600

    public init(password: String?) { self.password = password }

    public var loginRequired: Bool { password != nil }

    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    /// The session a cookie header names, with its CSRF token; nil when login is required and there is none.
    func session(cookieHeader: String?) -> (id: String?, csrf: String)? {
        guard loginRequired else { return (nil, processToken) }
        guard let id = Self.cookieValue(cookieHeader, Self.cookie) else { return nil }
        return sessions.withLock { s -> (String?, String)? in
            guard let entry = s[id], entry.expires > Date() else { s[id] = nil; return nil }
            return (id, entry.csrf)
        }
    }

    /// Checks a login attempt; on success returns a new session id.
    func login(password attempt: String) -> String? {
        guard let password, Self.constantTimeEqual(attempt, password) else { return nil }
        let id = Self.randomToken()
        sessions.withLock { $0[id] = (Self.randomToken(), Date().addingTimeInterval(Self.lifetime)) }
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
