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
    /// What that cost by the hive's price table (filled in when read; nil without usage or a price).
    @Nullable public var usd: Double?

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

    public static func += (a: inout TokenCount, b: TokenCount) {
        a.input += b.input; a.output += b.output; a.cacheWriteShort += b.cacheWriteShort; a.cacheWriteLong += b.cacheWriteLong; a.cacheRead += b.cacheRead
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
        /// What the agent's model answers cost through the gateway: today, the last 7 days, this month.
        public var spend: [GatewaySpend]
        /// The price table's date and source.
        public var prices: String
        public init(entries: [GatewayEntry], spend: [GatewaySpend] = [], prices: String = "") { self.entries = entries; self.spend = spend; self.prices = prices }
    }
}

/// An agent's metered spend over one period (host time zone), priced by the hive's table.
public struct GatewaySpend: Codable, Sendable, Equatable {
    /// `today`, `7 days` or `month`.
    public var period: String
    public var usd: Double
    public var answers: Int
    public var tokens: TokenCount
    /// Models priced by their family only (an id the table does not know), and models it cannot price.
    public var byFamily: [String]
    public var unpriced: [String]
    public init(period: String, usd: Double, answers: Int, tokens: TokenCount, byFamily: [String], unpriced: [String]) {
        self.period = period; self.usd = usd; self.answers = answers; self.tokens = tokens; self.byFamily = byFamily; self.unpriced = unpriced
    }

    /// Prices per-model token sums (what the gateway metered since the period began).
    public static func priced(_ period: String, _ perModel: [(model: String, answers: Int, tokens: TokenCount)], table: PriceTable) -> GatewaySpend {
        var spend = GatewaySpend(period: period, usd: 0, answers: 0, tokens: TokenCount(), byFamily: [], unpriced: [])
        for m in perModel {
            spend.answers += m.answers
            spend.tokens += m.tokens
            if let (usd, byFamily) = table.cost(m.model, m.tokens) {
                spend.usd += usd
                if byFamily { spend.byFamily.append(m.model) }
            } else {
                spend.unpriced.append(m.model)
            }
        }
        return spend
    }
}
