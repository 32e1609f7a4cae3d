import Foundation

/// One decision of a `gated` agent's gateway: a model request, a tunnel (`CONNECT`) or a forge
/// connection, allowed or refused, with what it moved. Kept per agent by core (the record an agent
/// cannot forge: it is written at the host end), shown by `hive net` and on the agent's page.
public struct GatewayEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable, WireSpelled { case model, connect, forge }

    public var at: Double
    public var kind: Kind
    /// `host:port` for a tunnel, the model asked for a model request, the forge's address.
    public var destination: String
    public var allowed: Bool
    /// The HTTP status the agent got (a model request's, or the gateway's own refusal); nil for a tunnel
    /// that was opened.
    @Nullable public var status: Int?
    /// Why it was refused, or how it ended.
    public var note: String
    /// Bytes from the agent, and to it.
    public var bytesOut: Int
    public var bytesIn: Int
    /// What the model's answer said it used (model requests only).
    @Nullable public var usage: TokenCount?

    public init(at: Double, kind: Kind, destination: String, allowed: Bool, status: Int? = nil, note: String,
                bytesOut: Int = 0, bytesIn: Int = 0, usage: TokenCount? = nil) {
        self.at = at; self.kind = kind; self.destination = destination; self.allowed = allowed
        self.status = status; self.note = note; self.bytesOut = bytesOut; self.bytesIn = bytesIn; self.usage = usage
    }
}

/// Tokens one model answer used, as the API reported them in its stream (`message_start`, then the
/// final `message_delta`): the gateway's meter, per agent.
public struct TokenCount: Codable, Sendable, Equatable {
    public var input = 0
    public var output = 0
    /// Cache writes with the 5-minute lifetime (short, 1.25x the input price) and the 1-hour one (long, 2x).
    public var cacheWriteShort = 0
    public var cacheWriteLong = 0
    public var cacheRead = 0

    public init(input: Int = 0, output: Int = 0, cacheWriteShort: Int = 0, cacheWriteLong: Int = 0, cacheRead: Int = 0) {
        self.input = input; self.output = output; self.cacheWriteShort = cacheWriteShort; self.cacheWriteLong = cacheWriteLong; self.cacheRead = cacheRead
    }
}

/// `gateway_log`: the newest decisions of one agent's gateway (`hive net NAME` on the admin socket; on an
/// agent's own socket, for its page, only its own name is answered).
public struct GatewayLogCommand: HiveCommand {
    public static let cmd = "gateway_log"
    public var agent: String
    public var limit: Int?
    public init(agent: String, limit: Int? = nil) { self.agent = agent; self.limit = limit }
    public struct Reply: Codable, Sendable, Equatable {
        public var entries: [GatewayEntry]
        public init(entries: [GatewayEntry]) { self.entries = entries }
    }
}
