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
}
