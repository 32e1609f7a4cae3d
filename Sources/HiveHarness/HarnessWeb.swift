import Foundation
import HiveClient
import HiveHTTP
import HiveTelemetry
import Hummingbird
import HiveHost
import HiveWire
import Logging
import ServiceLifecycle

/// The harness's HTTP endpoint on `<run-dir>/agents/<n>/page/web.sock`: state, the live event stream (SSE),
/// turn stats and operator actions. The dashboard proxies `/agent/<n>/...` to it, so every link here is
/// relative and nothing assumes it is served at the root.
public enum HarnessWeb {
    /// An HTTP application serving `loop` on the unix socket at `path` (mode 0660), as a service.
    public static func application(_ loop: TurnLoop, path: String, logger: Logger) throws -> some Service {
        try HiveLayout.checkSocketPath(URL(filePath: path))
        unlink(path) // a stale socket from a killed harness; core holds the run dir, so it is ours
        let router = Router()
        router.get("/") { _, _ in
            // The page opens on the recent stream (the last 300 events); older ones stay in events.sqlite.
            let last = (try? loop.events.lastSeq()) ?? 0
            let recent = (try? loop.events.events(after: max(0, last - 300), limit: 300)) ?? []
            return Reply.html(AgentPage.html(agent: loop.config.name.rawValue, status: loop.status.read(),
                                       initial: .init(events: recent, lastSeq: last, inbox: await inbox(loop))))
        }
        router.get("/state") { _, _ in Reply.json(loop.status.read()) }
        router.get("/events") { request, _ in
            let after = Int64(request.uri.queryParameters["after"].map(String.init) ?? "") ?? 0
            let limit = min(1000, max(1, Int(request.uri.queryParameters["limit"].map(String.init) ?? "") ?? 500))
            return Reply.json(try loop.events.events(after: after, limit: limit))
        }
        router.get("/events/stream") { request, _ in
            let fromQuery = Int64(request.uri.queryParameters["after"].map(String.init) ?? "")
            let fromHeader = request.headers[.init("Last-Event-ID")!].flatMap { Int64($0) }
            return stream(loop.events, after: fromHeader ?? fromQuery ?? 0)
        }
        // Every turn since `since` (unix seconds), as rows; `range` gives the page's aggregates instead.
        router.get("/stats.json") { request, _ in
            if let raw = request.uri.queryParameters["range"].map(String.init) {
                guard let range = StatsRange.named(raw) else { return Reply.json(["error": "range is 24h, 7d or 30d"], status: .badRequest) }
                return Reply.json(try await report(loop, range))
            }
            let since = Double(request.uri.queryParameters["since"].map(String.init) ?? "") ?? 0
            return Reply.json(try loop.stats.turns(since: since))
        }
        router.get("/stats") { request, _ in
            guard let range = StatsRange.named(request.uri.queryParameters["range"].map(String.init)) else {
                return Reply.json(["error": "range is 24h, 7d or 30d"], status: .badRequest)
            }
            let turns = try loop.stats.turns(since: Date().timeIntervalSince1970 - range.span)
            let price = PriceTable.builtIn.price(turns.last?.model ?? loop.config.model)?.0.input ?? 3
            let evaluation = PolicyEvaluation.evaluate(turns, policy: loop.config.policy, inputPricePerMillion: price)
            return Reply.html(StatsPage.html(agent: loop.config.name.rawValue, report: try await report(loop, range), policies: evaluation))
        }
        // The agent's own transcript, searched (`q` as `hive search` reads it), best first.
        router.get("/search") { request, _ in
            let limit = min(SearchQuery.maxResults, max(1, Int(request.uri.queryParameters["limit"].map(String.init) ?? "") ?? 20))
            do {
                let query = try SearchQuery.parse(request.uri.queryParameters["q"].map(String.init) ?? "")
                return Reply.json(TranscriptSearchReply(hits: try loop.events.search(query, limit: limit)))
            } catch let e as RequestError {
                return Reply.json(["error": e.description], status: .badRequest)
            }
        }
        router.get("/turn/:turn") { request, context in
            guard let turn = context.parameters.get("turn").flatMap({ Int64($0) }), turn >= 0 else {
                return Reply.json(["error": "a turn is a number"], status: .badRequest)
            }
            let mark = Int64(request.uri.queryParameters["event"].map(String.init) ?? "")
            return Reply.html(TranscriptPage.html(agent: loop.config.name.rawValue, turn: turn, events: try loop.events.events(ofTurn: turn), mark: mark))
        }
        router.get("/network") { _, _ in
            do {
                let log = try await HiveConnection(path: loop.config.socket).call(GatewayLogCommand(agent: loop.config.name.rawValue, limit: 200))
                return Reply.html(NetworkPage.html(agent: loop.config.name.rawValue, entries: log.entries, spend: log.spend, prices: log.prices))
            } catch {
                return Reply.html(NetworkPage.html(agent: loop.config.name.rawValue, entries: [], error: "core is not answering: \(error)"), status: .badGateway)
            }
        }
        router.get("/inbox") { _, _ in
            let view = await inbox(loop)
            return Reply.json(view, status: view.error == nil ? .ok : .badGateway)
        }
        router.post("/cancel") { _, _ in Reply.json(["cancelled": loop.cancelTurn()]) }
        router.post("/compact") { _, _ in
            loop.requestCompact()
            return Reply.json(["compact": "before the next turn"])
        }
        router.post("/new-session") { _, _ in
            loop.requestNewSession()
            return Reply.json(["new_session": "on the next turn"])
        }
        // A note for the agent from whoever is on this page. The harness can only speak as the agent, so
        // the note travels as the agent's own `request_next_turn`: a `system` message to itself, labeled.
        router.post("/send") { request, _ in
            let data = try await request.body.collect(upTo: 16 * 1024)
            let text = String(buffer: data).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty, text.utf8.count <= 900 else {
                return Reply.json(["error": "send a note of 1 to 900 bytes as the request body"], status: .badRequest)
            }
            let id = try await loop.deliverNote(text)
            return Reply.json(["id": id])
        }
        return Application(router: router, configuration: .init(address: .unixDomainSocket(path: path), serverName: "hive-agent"),
                           onServerRunning: { _ in _ = chmod(path, 0o660) }, logger: logger)
    }

    /// The agent's counters and latest messages, from core through the agent's own socket.
    static func inbox(_ loop: TurnLoop) async -> AgentPage.InboxView {
        do {
            let conn = try HiveConnection(path: loop.config.socket)
            let status = try await conn.call(StatusCommand())
            let recent = try await conn.call(RecentCommand(limit: 30))
            return .init(unread: status.unread, inflight: status.inflight, pendingReminders: status.pendingReminders, messages: recent.messages)
        } catch {
            return .init(error: "core is not answering: \(error)")
        }
    }

    /// The stats page's report, with the reminder rollup from core (left out when core does not answer).
    static func report(_ loop: TurnLoop, _ range: StatsRange) async throws -> StatsReport {
        var report = try loop.stats.report(range)
        if let r = try? await HiveConnection(path: loop.config.socket).call(ReminderRollupCommand(sinceSecs: range.span)) {
            report.reminders = ReminderRollup(attempts: r.attempts, successes: r.successes, failures: r.failures)
        }
        return report
    }

    /// Server-sent events: everything after `after` from the store, then live events, each with its `seq`
    /// as the event id (a reconnecting client sends Last-Event-ID and misses nothing, sees nothing twice).
    static func stream(_ store: EventStore, after: Int64) -> Response {
        EventStream.response { sink in
            let live = store.subscribe() // before the backlog, so nothing falls between the two
            var last = after
            /// Sends what the store holds after `last`, before `end` (nil: all of it), a page at a time.
            func backlog(before end: Int64? = nil) async {
                do {
                    while true {
                        let page = try store.events(after: last, limit: 1000).filter { end == nil || $0.seq < end! }
                        for e in page { await sink.send(frame(e)); last = e.seq }
                        if page.count < 1000 { break }
                    }
                } catch {
                    await sink.comment("backlog unavailable: \(error)")
                }
            }
            await backlog()
            for await e in live where e.seq > last {
                // A slow client lets the live buffer overflow; what it dropped is still in the store.
                if e.seq > last + 1 { await backlog(before: e.seq) }
                await sink.send(frame(e))
                last = e.seq
            }
        }
    }

    static func frame(_ e: LiveEvent) -> String {
        let data = (try? WireCoding.encoder().encode(e)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return EventStream.frame(id: e.seq, event: "live", data: data)
    }
}
