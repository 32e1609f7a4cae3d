import Foundation
import PostgresNIO

/// Where a node's database is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE]`, checked at
/// the edge (`hive core --database`). The password may instead come from `PGPASSWORD`, so it need not sit
/// in a unit file or a process listing.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, CaseIterable {
        /// No TLS: only for a database on this host (loopback).
        case disable
        /// TLS, the server's certificate checked against the system's roots and the host name.
        case verifyFull = "verify-full"
    }
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard text.utf8.count <= 1024, let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? "") else {
            throw DatabaseURLError("--database wants postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, e.g. postgres://hive@db.internal/hive")
        }
        guard let host = url.host, !host.isEmpty else { throw DatabaseURLError("--database: no host in '\(Self.redacted(text))'") }
        guard let user = url.user, !user.isEmpty else { throw DatabaseURLError("--database: no user in '\(Self.redacted(text))' (postgres://USER@HOST/DATABASE)") }
        let name = String(url.path.drop { $0 == "/" })
        guard !name.isEmpty, !name.contains("/") else { throw DatabaseURLError("--database: no database name in '\(Self.redacted(text))' (…@HOST/DATABASE)") }
        let port = url.port ?? 5432
        guard (1...65535).contains(port) else { throw DatabaseURLError("--database: port \(port) is out of range") }
        let loopback = ["localhost", "127.0.0.1", "::1"].contains(host) || host.hasPrefix("127.")
        var tls: TLSMode = loopback ? .disable : .verifyFull
        for item in url.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: item.value ?? "") else {
                    throw DatabaseURLError("--database: sslmode is one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", ")), not '\(item.value ?? "")'")
                }
                tls = mode
            default:
                throw DatabaseURLError("--database: unknown parameter '\(item.name)' (only sslmode)")
            }
        }
        // Between hosts the database's traffic (messages, tokens of nodes) is encrypted: no TLS is only for loopback.
        guard tls != .disable || loopback else {
            throw DatabaseURLError("--database: sslmode=disable is only allowed for a database on this host; between hosts use TLS (docs/multi-host.md)")
        }
        self.host = host
        self.port = port
        self.user = user
        self.password = url.password ?? environment["PGPASSWORD"]
        self.database = name
        self.tls = tls
    }

    /// The URL without its password, for logs and errors.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)" }

    static func redacted(_ text: String) -> String {
        text.replacingOccurrences(of: #"://([^:@/]*):[^@/]*@"#, with: "://$1:***@", options: .regularExpression).prefix(200).description
    }

}

public struct DatabaseURLError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension PostgresBroker {
    /// Opens the store at `url` as node `node`.
    public static func open(_ url: DatabaseURL, node: String, logger: Logger) throws -> PostgresBroker {
        try open(host: url.host, port: url.port, user: url.user, password: url.password, database: url.database, tls: url.tls,
                 node: node, logger: logger)
    }
}
