/// One node of a hive on many hosts, as its heartbeat left it (docs/multi-host.md).
public struct NodeView: Codable, Sendable, Equatable {
    public var name: String
    /// The host it runs on (its hostname).
    public var host: String
    /// Where other nodes and the dashboard reach it (`https://HOST:PORT`), if it serves.
    @Nullable public var endpoint: String?
    public var startedAt: Double
    /// Seconds since its last heartbeat, by the database's clock.
    public var heartbeatAge: Double
    /// False once its heartbeat is older than the hive's threshold: its agents show `node_down`.
    public var up: Bool
    public var cores: Int
    public var memoryMegabytes: Int
    /// The host's one-minute load average.
    public var load: Double
    /// Agents placed on it (tombstones not counted).
    public var agents: Int
    public init(name: String, host: String, endpoint: String?, startedAt: Double, heartbeatAge: Double, up: Bool, cores: Int, memoryMegabytes: Int,
                load: Double, agents: Int) {
        self.name = name; self.host = host; self.endpoint = endpoint; self.startedAt = startedAt; self.heartbeatAge = heartbeatAge; self.up = up
        self.cores = cores; self.memoryMegabytes = memoryMegabytes; self.load = load; self.agents = agents
    }
}

/// An agent placed on a node, with the state its node last published (so every node can list every agent).
public struct Placement: Sendable, Equatable {
    public var node: String
    /// Whether its node's heartbeat is current.
    public var nodeUp: Bool
    public var state: AgentState?
    public var detail: String?
    public var since: Double?
    public init(node: String, nodeUp: Bool, state: AgentState?, detail: String?, since: Double?) {
        self.node = node; self.nodeUp = nodeUp; self.state = state; self.detail = detail; self.since = since
    }
}

/// How another node reaches one and knows it is that node: its endpoint, the certificate it serves there
/// (pinned: the database is the trust anchor, no CA is involved) and the SHA-256 of its node token.
public struct NodePeer: Sendable, Equatable {
    public var name: String
    public var endpoint: String
    /// PEM.
    public var certificate: String
    /// Hex.
    public var tokenSHA256: String
    public var up: Bool
    public init(name: String, endpoint: String, certificate: String, tokenSHA256: String, up: Bool) {
        self.name = name; self.endpoint = endpoint; self.certificate = certificate; self.tokenSHA256 = tokenSHA256; self.up = up
    }
}

/// What a node's heartbeat carries.
public struct NodeBeat: Sendable, Equatable {
    public var host: String
    public var endpoint: String?
    /// The node endpoint's certificate (PEM) and the SHA-256 of its token (hex), when it serves one.
    public var certificate: String?
    public var tokenSHA256: String?
    public var cores: Int
    public var memoryMegabytes: Int
    public var load: Double
    /// The state of each agent running here, as its list shows it.
    public var states: [(agent: String, state: AgentState, detail: String?, since: Double?)]
    public init(host: String, endpoint: String?, cores: Int, memoryMegabytes: Int, load: Double,
                states: [(agent: String, state: AgentState, detail: String?, since: Double?)]) {
        self.host = host; self.endpoint = endpoint; self.cores = cores; self.memoryMegabytes = memoryMegabytes; self.load = load; self.states = states
    }
    /// With this node's endpoint, as other nodes reach it.
    public func serving(_ endpoint: String?, certificate: String?, tokenSHA256: String?) -> NodeBeat {
        var beat = self
        beat.endpoint = endpoint; beat.certificate = certificate; beat.tokenSHA256 = tokenSHA256
        return beat
    }
    public static func == (a: NodeBeat, b: NodeBeat) -> Bool {
        a.host == b.host && a.endpoint == b.endpoint && a.cores == b.cores && a.memoryMegabytes == b.memoryMegabytes && a.load == b.load
            && a.states.map(\.agent) == b.states.map(\.agent) && a.states.map(\.state) == b.states.map(\.state)
    }
}
