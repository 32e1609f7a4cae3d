import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a `gated` agent may reach besides the model API and the forge: the allow-list of its
/// `agent.json`, checked twice by the egress gateway: the name (and port, and scheme) before anything
/// is resolved, and every address the gateway's own resolver returns before it dials. The second check
/// is what keeps an allowed name that resolves to 127.0.0.1 (or a private address) away from the
/// dashboard, the forge's admin side or a database on the host's network.
///
/// Entries, as the operator writes them:
/// - `example.com`: HTTPS (`CONNECT`) to exactly that host, port 443;
/// - `*.example.com`: any host under it (not `example.com` itself), port 443;
/// - `example.com:8443`: that port instead of 443;
/// - `http://example.com` (optionally with a port): plain HTTP there too, port 80 by default;
/// - `203.0.113.7` or `[2001:db8::7]` (with an optional port): an address literal, which is otherwise
///   refused.
/// Nothing else: no wildcards in the middle, no paths, no user info.
public struct EgressPolicy: Sendable, Equatable {
    public enum Host: Sendable, Equatable, Hashable {
        case exact(String)
        /// Hosts strictly under this suffix (`*.example.com` → `example.com`).
        case under(String)
        case address(IPAddress)
    }

    public struct Entry: Sendable, Equatable, Hashable {
        public var host: Host
        public var port: Int
        /// Plain HTTP (the gateway forwards the request); otherwise only a `CONNECT` tunnel.
        public var plain: Bool
    }

    public let entries: [Entry]

    /// The longest allow-list taken: the gateway checks every request against all of it.
    public static let maxEntries = 256

    /// Parses an allow-list; every bad entry is named, one sentence each.
    public init(allow: [String]) throws(EgressPolicyError) {
        guard allow.count <= Self.maxEntries else { throw EgressPolicyError(["at most \(Self.maxEntries) entries, not \(allow.count)"]) }
        var entries: [Entry] = [], problems: [String] = []
        for (i, raw) in allow.enumerated() {
            do { entries.append(try Self.entry(raw)) } catch { problems.append("[\(i)] '\(raw.prefix(80))': \(error.reason)") }
        }
        if !problems.isEmpty { throw EgressPolicyError(problems) }
        self.entries = entries
    }

    /// Why a request for `host:port` was refused, or nil when it may go on to be resolved. `plain` is a
    /// forwarded HTTP request rather than a `CONNECT`.
    public func refusal(host rawHost: String, port: Int, plain: Bool) -> String? {
        guard let host = Self.normalised(rawHost) else { return "'\(rawHost.prefix(80))' is not a host name" }
        let address = IPAddress(host)
        let matches = entries.filter { e in
            guard e.port == port, e.plain == plain else { return false }
            switch (e.host, address) {
            case (.address(let a), let b?): return a == b
            case (.exact(let name), nil): return name == host
            case (.under(let suffix), nil): return host.hasSuffix("." + suffix)
            default: return false
            }
        }
        if !matches.isEmpty { return nil }
        if address != nil { return "\(host) is an address, not on the allow-list (names are resolved by the hive)" }
        let listed = entries.contains { e in
            switch e.host {
            case .exact(let name): return name == host
            case .under(let suffix): return host.hasSuffix("." + suffix)
            case .address: return false
            }
        }
        if listed { return plain ? "\(host) is allowed over HTTPS only (port \(port) plain HTTP is not on the list)" : "\(host):\(port) is not on the allow-list (that host is, on another port)" }
        return "\(host) is not on this agent's allow-list"
    }

    /// Why the addresses a name resolved to may not be dialled, or nil. Every address counts: a name
    /// that resolves to one public and one private address is refused whole, since which one is dialled
    /// is not the agent's choice to steer.
    public static func refusal(resolved: [IPAddress]) -> String? {
        guard !resolved.isEmpty else { return "the name does not resolve" }
        if let inner = resolved.first(where: \.isInternal) { return "it resolves to \(inner), an address inside the host's or a private network" }
        return nil
    }

    // MARK: - Parsing

    static func entry(_ raw: String) throws(EntryError) -> Entry {
        var rest = raw.trimmingCharacters(in: .whitespaces)
        var plain = false
        if rest.lowercased().hasPrefix("http://") { plain = true; rest = String(rest.dropFirst(7)) } else if rest.lowercased().hasPrefix("https://") {
            rest = String(rest.dropFirst(8))
        }
        guard !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), !rest.contains("#") else {
            throw EntryError("a host, optionally with a port: no path, query or user")
        }
        var port = plain ? 80 : 443
        var hostPart = rest
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw EntryError("an IPv6 address in brackets lacks its ']'") }
            hostPart = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()) else { throw EntryError("after ']' only ':port'") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw EntryError("the port is not a number") }
            port = p
            hostPart = String(rest[..<colon])
        }
        guard (1...65535).contains(port) else { throw EntryError("port \(port) is out of range") }
        if let address = IPAddress(hostPart) { return Entry(host: .address(address), port: port, plain: plain) }
        if hostPart.hasPrefix("*.") {
            guard let suffix = normalised(String(hostPart.dropFirst(2))), suffix.contains(".") else {
                throw EntryError("'*.' must be followed by a domain with at least two labels")
            }
            return Entry(host: .under(suffix), port: port, plain: plain)
        }
        guard !hostPart.contains("*") else { throw EntryError("'*' only as the whole first label ('*.example.com')") }
        guard let host = normalised(hostPart) else { throw EntryError("not a host name (ASCII letters, digits, '-' and dots; punycode for others)") }
        return Entry(host: .exact(host), port: port, plain: plain)
    }

    /// A host name lowercased without its trailing dot, or nil when it is not one (labels of 1 to 63 of
    /// a-z 0-9 and inner '-', 253 bytes at most). Address literals pass through as they are.
    public static func normalised(_ raw: String) -> String? {
        var host = raw.lowercased()
        if host.hasSuffix(".") { host.removeLast() }
        if IPAddress(host) != nil { return host }
        guard !host.isEmpty, host.utf8.count <= 253 else { return nil }
        for label in host.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else { return nil }
        }
        return host
    }

    struct EntryError: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}

/// Why an allow-list was refused: one line per bad entry.
public struct EgressPolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { "egress allow-list: " + problems.joined(separator: "; ") }
}
