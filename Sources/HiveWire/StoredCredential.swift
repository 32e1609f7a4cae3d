import Foundation

/// A Claude credential the operator stored once for the hive (`hive login`): an OAuth token from
/// `claude setup-token` (a subscription) or an API key. Kept in `<root>/credentials/<name>.json`, root's
/// and 0600; core puts it in the environment of each cage whose config names it (default: `default`),
/// and nothing else of it anywhere.
public struct StoredCredential: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case oauthToken = "oauth_token", apiKey = "api_key" }
    public var kind: Kind
    public var secret: String
    public var createdAt: Double

    public init(secret: String, createdAt: Double = Date().timeIntervalSince1970) throws(RequestError) {
        let s = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !s.isEmpty, s.utf8.count <= 512, s.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw RequestError("a credential is one line of at most 512 printable characters")
        }
        // `claude setup-token` prints sk-ant-oat…; API keys are sk-ant-api….
        kind = s.hasPrefix("sk-ant-oat") ? .oauthToken : .apiKey
        self.secret = s
        self.createdAt = createdAt
    }

    public static func isName(_ name: String) -> Bool {
        name.range(of: "^[a-z0-9_-]{1,32}$", options: .regularExpression) != nil
    }

    /// Puts the credential where claude reads it, and clears any other credential from `env` (one agent,
    /// one identity toward the API).
    public func apply(to env: inout [String: String]) {
        for key in Self.variables { env[key] = nil }
        env[kind == .oauthToken ? "CLAUDE_CODE_OAUTH_TOKEN" : "ANTHROPIC_API_KEY"] = secret
    }

    /// Every variable claude takes a credential from.
    public static let variables = ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_AUTH_TOKEN"]

    public static func file(_ name: String, in layout: HiveLayout) -> URL {
        layout.credentialsDir.appending(path: "\(name).json")
    }

    /// Stores the credential under `name` (replacing one of that name), readable by its owner only.
    public func store(as name: String, in layout: HiveLayout) throws {
        let dir = layout.credentialsDir
        // The root above stays as it is (agents' uids must reach it); only this directory is closed.
        try FileManager.default.createDirectory(at: layout.root, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: dir.path) {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        }
        _ = chmod(dir.path, 0o700)
        let data = try JSONEncoder().encode(self)
        let temp = dir.appending(path: ".\(name).\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: temp.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw RequestError("cannot write \(temp.path)")
        }
        guard rename(temp.path, Self.file(name, in: layout).path) == 0 else {
            try? FileManager.default.removeItem(at: temp)
            throw RequestError("cannot store the credential: \(String(cString: strerror(errno)))")
        }
    }

    public static func load(_ name: String, in layout: HiveLayout) -> StoredCredential? {
        guard isName(name), let data = FileManager.default.contents(atPath: file(name, in: layout).path) else { return nil }
        return try? JSONDecoder().decode(StoredCredential.self, from: data)
    }

    /// Names of the stored credentials, sorted.
    public static func names(in layout: HiveLayout) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: layout.credentialsDir.path)) ?? [])
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }.sorted()
    }
}
