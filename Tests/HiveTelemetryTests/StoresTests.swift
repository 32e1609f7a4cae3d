import Foundation
import HiveTelemetry
import Testing

@Suite("Telemetry stores")
struct StoresTests {
    let dir: URL
    init() throws {
        dir = FileManager.default.temporaryDirectory.appending(path: "hive-tel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    @Test("events: monotonic seq across reopen, backlog after a seq, live subscription, batched retention")
    func events() async throws {
        let path = dir.appending(path: "events.sqlite").path
        let now = Date().timeIntervalSince1970
        do {
            let store = try EventStore(path: path)
            for i in 0..<2500 { try store.append(kind: "stdout", body: "old \(i)", turn: 1, at: now - 8 * 86400) }
        }
        let store = try EventStore(path: path)
        let live = store.subscribe()
        let fresh = try store.append(kind: "harness", body: "new", turn: 2, at: now)
        #expect(fresh.seq == 2501, "seq continues after a reopen")
        var it = live.makeAsyncIterator()
        #expect(await it.next()?.seq == 2501)
        #expect(try store.events(after: 2499).map(\.seq) == [2500, 2501])
        #expect(try store.sweep(olderThan: 7 * 86400, now: now, batch: 1000) == 2500)
        #expect(try store.events(after: 0).map(\.body) == ["new"])
        #expect(try store.append(kind: "x", body: "y", turn: nil).seq == 2502, "sweeping never reuses a seq")
    }

    @Test("turn stats: recorded, read back, fresh baseline, retention")
    func turnStats() throws {
        let store = try TurnStatsStore(path: dir.appending(path: "turn-stats.sqlite").path)
        let now = Date().timeIntervalSince1970
        func stat(_ started: Double, _ action: String, _ ctx: Int) -> TurnStat {
            TurnStat(id: nil, startedAt: started, endedAt: started + 2, model: "m", sessionID: "s", wakeSource: "bob", messageID: 1,
                     resultKind: "ok", detail: nil, inputTokens: 1, outputTokens: 2, cacheReadTokens: 3, cacheCreationTokens: 4,
                     contextTokens: ctx, contextWindow: 200_000, costUSD: 0.5, toolCalls: 1, toolBreakdown: "{}", sessionAction: action,
                     sessionReason: "r", estimatedContinueCost: 1, estimatedFreshCost: 2, exitStatus: 0)
        }
        try store.record(stat(now - 100 * 86400, "fresh", 9000))
        try store.record(stat(now - 10, "fresh", 21000))
        try store.record(stat(now - 5, "continue", 50000))
        #expect(try store.freshBaseline() == 21000)
        #expect(try store.turns(since: now - 60).count == 2)
        #expect(try store.last()?.contextTokens == 50000)
        #expect(try store.sweep(olderThan: 90 * 86400, now: now) == 1)
        #expect(try store.turns().count == 2)
    }
}
