import AsyncHTTPClient
import Foundation
import HiveBroker
import HiveGate
import HiveHost
import HiveWire
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The host ends of every `gated` agent's network (see ``GatedNetwork``), in its run dir, owned by its
/// uid: the model gateway, the CONNECT proxy for its allow-list, and the relay to the forge. Opened
/// (anew, with the config being deployed) just before its cage starts, closed when it stops. Every
/// decision goes to the store's gateway log.
final class AgentGateways: Sendable {
    /// Operator settings for every agent's gateway, from core's command line.
    struct Settings: Sendable {
        /// The Messages API the model gateway forwards to.
        var upstream = "https://api.anthropic.com"
        /// Names the gateway resolves to fixed addresses (`--egress-resolve`), before the host's resolver.
        var pins: [String: [IPAddress]] = [:]
        /// Internal `address:port` endpoints agents may still reach by a listed name (`--egress-allow-internal`).
        var internalExceptions: Set<String> = []
    }

    private struct Ends {
        var model: ModelGateway
        var proxy: ConnectProxy
        var forge: SocketRelay?
    }

    private let layout: HiveLayout
    private let broker: any HiveStore
    private let settings: Settings
    private let forge: ForgeDesk?
    /// Where each metered model answer's cost goes (spend of record for budgets).
    private let ledger: SpendLedger?
    private let logger: Logger
    private let client: HTTPClient
    private let open = Mutex<[AgentName: Ends]>([:])
    /// Log rows per agent: a burst, then a steady rate; past it rows are counted and the count is
    /// written with the next row (a looping agent cannot flood the store).
    private let logRate = Mutex<[AgentName: (bucket: TokenBucket, skipped: Int)]>([:])

    init(layout: HiveLayout, broker: any HiveStore, settings: Settings, forge: ForgeDesk?, ledger: SpendLedger? = nil, logger: Logger) {
        self.ledger = ledger
        self.layout = layout
        self.broker = broker
        self.settings = settings
        self.forge = forge
        self.logger = logger
        var config = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(600)))
        // Every agent's answers share the pool: room for all of them (each agent has 16 at most in flight).
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// The forge's port, where cages reach it on their own loopback.
    var forgePort: Int? { forge.flatMap { URLComponents(string: $0.forge.baseURL)?.port } }

    /// Opens `name`'s ends for `config` (closing any it had), owned by `owner`. `credential` is what the
    /// model gateway adds (nil: none stored; the agent's model requests are refused with why).
    /// `model` is asked at each request: the operator's `hive model` choice applies without a restart.
    func open(_ name: AgentName, config: AgentConfig, model: @escaping @Sendable () -> String, credential: StoredCredential?, owner: (uid_t, gid_t)?) throws {
        close(name)
        let dir = layout.agentRunDir(name).path
        let record: @Sendable (GatewayEntry) -> Void = { [weak self] entry in self?.log(name, entry) }
        let route = ModelGateway.Route(agent: name.rawValue, credential: credential, approved: { ([model()] + config.models).joined(separator: ", ") },
                                       allowsModel: { asked in var c = config; c.model = model(); return c.allowsModel(asked) },
                                       windows: { [weak ledger] in ledger?.recordWindows(name, $0) },
                                       metering: { [weak ledger] answer, model, usage, final in ledger?.meterAnswer(name, answer: answer, model: model, usage: usage, final: final) },
                                       refusal: { [weak ledger] in ledger?.modelRefusal(name) })
        let modelEnd = ModelGateway(path: "\(dir)/\(GatedNetwork.modelSocket)", owner: owner, route: route, upstream: settings.upstream,
                                    client: client, logger: logger, record: record)
        let policy = try EgressPolicy(allow: config.egress.allow) // checked when the config was approved
        let gate = EgressGate(policy: policy, resolver: PinnedResolver(pins: settings.pins), internalExceptions: settings.internalExceptions)
        let budget = EgressBudget(bytesPerMinute: Double(config.egress.mbPerMinute) * 1024 * 1024, maxConnections: config.egress.connections,
                                  now: Date().timeIntervalSince1970)
        let proxy = ConnectProxy(path: "\(dir)/\(GatedNetwork.proxySocket)", owner: owner, gate: gate, budget: budget, record: record)
        var forgeRelay: SocketRelay?
        if let forge, let url = URLComponents(string: forge.forge.baseURL), let port = url.port {
            let address = IPAddress(url.host == "localhost" ? "127.0.0.1" : url.host ?? "") ?? IPAddress("127.0.0.1")!
            forgeRelay = try SocketRelay(path: "\(dir)/\(GatedNetwork.forgeSocket)", owner: owner, to: address, port: port) { allowed, note, out, inn in
                record(GatewayEntry(at: Date().timeIntervalSince1970, kind: .forge, destination: "\(address):\(port)", allowed: allowed,
                                    note: note, bytesOut: out, bytesIn: inn))
            }
        }
        do {
            try Blocking.run { try await modelEnd.start() }
            try proxy.start()
        } catch {
            Blocking.run { await modelEnd.stop(grace: .zero) }
            proxy.stop()
            forgeRelay?.stop()
            throw error
        }
        forgeRelay?.start()
        open.withLock { $0[name] = Ends(model: modelEnd, proxy: proxy, forge: forgeRelay) }
        logger.info("gated network of \(name): model via \(settings.upstream), \(policy.entries.count) allowed destination(s)")
    }

    /// Whether `name`'s gateway is open (its model answers are metered here).
    func isOpen(_ name: AgentName) -> Bool { open.withLock { $0[name] != nil } }

    /// Closes `name`'s ends (its cage has stopped). Answers still streaming get a few seconds.
    func close(_ name: AgentName) {
        guard let ends = open.withLock({ $0.removeValue(forKey: name) }) else { return }
        ends.proxy.stop()
        ends.forge?.stop()
        Blocking.run { await ends.model.stop() }
    }

    /// Closes every agent's ends and the connections to the model API (core is stopping).
    func shutdown() async {
        let all = open.withLock { o in defer { o = [:] }; return Array(o.values) }
        for ends in all {
            ends.proxy.stop()
            ends.forge?.stop()
            await ends.model.stop()
        }
        try? await client.shutdown()
    }

    /// Logs `entry`: a model answer always (the spend record), other decisions within the rate; texts cut
    /// to a size a row should have (an agent chooses what it asks for).
    private func log(_ name: AgentName, _ entry: GatewayEntry) {
        var entry = entry
        entry.destination = String(entry.destination.prefix(256))
        entry.note = String(entry.note.prefix(512))
        if entry.kind == .model && entry.allowed { return write(name, entry) }
        let now = Date().timeIntervalSince1970
        let skipped = logRate.withLock { rates -> Int? in
            var r = rates[name] ?? (TokenBucket(burst: 100, refillPerSecond: 10, now: now), 0)
            defer { rates[name] = r }
            guard case .success = r.bucket.take(now: now) else { r.skipped += 1; return nil }
            defer { r.skipped = 0 }
            return r.skipped
        }
        guard let skipped else { return }
        if skipped > 0 { entry.note += " (\(skipped) earlier decisions not logged: over 10 a second)" }
        write(name, entry)
    }

    private func write(_ name: AgentName, _ entry: GatewayEntry) {
        do { try broker.recordGateway(name, entry) } catch { logger.error("cannot log a gateway decision of \(name): \(error)") }
    }
}

/// `gateway_log`'s answer (on the admin socket, and on an agent's own): the newest entries with each
/// answer's cost, and the agent's metered spend today, over 7 days and this month (host time zone),
/// priced by the operator's `<root>/prices.json` or the hive's table.
enum GatewayReport {
    static func reply(_ broker: any HiveStore, _ name: AgentName, limit: Int, layout: HiveLayout, now: Date = Date()) throws -> GatewayLogCommand.Reply {
        let table = try PriceTable.load(root: layout.root)
        var entries = try broker.gatewayLog(name, limit: limit)
        for i in entries.indices {
            if let usage = entries[i].usage { entries[i].usd = table.cost(entries[i].destination, usage)?.usd }
        }
        let calendar = Calendar.current
        let periods: [(String, Date)] = [("today", calendar.startOfDay(for: now)), ("7 days", now.addingTimeInterval(-7 * 86_400)),
                                         ("month", calendar.dateInterval(of: .month, for: now)?.start ?? calendar.startOfDay(for: now))]
        let spend = try periods.map { period, since in
            GatewaySpend.priced(period, try broker.gatewayUsage(name, since: since.timeIntervalSince1970), table: table)
        }
        return GatewayLogCommand.Reply(entries: entries, spend: spend, prices: "\(table.date), \(table.source)")
    }
}

/// The gateway's resolver: names the operator pinned (`--egress-resolve NAME=ADDRESS`), then the host's.
struct PinnedResolver: NameResolver {
    let pins: [String: [IPAddress]]
    func resolve(_ host: String) throws -> [IPAddress] {
        if let pinned = pins[host] { return pinned }
        return try SystemResolver().resolve(host)
    }
}

