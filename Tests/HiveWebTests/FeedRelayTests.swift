import Foundation
@testable import HiveWeb
import HiveWire
import Testing

@Suite("Feed relay")
struct FeedRelayTests {
    func events(_ seqs: ClosedRange<Int64>) -> [DashboardEvent] { seqs.map { DashboardEvent(seq: $0, .agents([])) } }
    func frames(_ seqs: ClosedRange<Int64>) -> [FeedRelay.Frame] { events(seqs).map(FeedRelay.Frame.init) }

    @Test("answers from memory within its window, sends the rest to core, and starts over on a reset")
    func reads() async throws {
        let relay = FeedRelay(core: CoreLink(socket: "/nonexistent"), keep: 10)
        #expect(relay.read(after: 0) == .fromCore, "before its first poll")
        relay.apply(.init(seq: 100, events: [], reset: true))
        #expect(relay.read(after: 100) == .wait)
        #expect(relay.read(after: 101) == .fromCore, "a snapshot newer than the relay: core answers")
        #expect(relay.read(after: 99) == .fromCore, "older than what it holds")
        relay.apply(.init(seq: 115, events: events(101...115), reset: false))
        #expect(relay.read(after: 104) == .fromCore, "only the newest 10 are kept")
        #expect(relay.read(after: 105) == .events(frames(106...115)))
        #expect(relay.read(after: 112) == .events(frames(113...115)))
        #expect(relay.read(after: 115) == .wait)

        let (changes, _) = relay.subscribe()
        var woken = changes.makeAsyncIterator()
        relay.apply(.init(seq: 116, events: events(116...116), reset: false))
        relay.apply(.init(seq: 117, events: events(117...117), reset: false))
        #expect(await woken.next() != nil, "a change wakes subscribers (coalesced)")
        #expect(relay.read(after: 115) == .events(frames(116...117)))

        relay.apply(.init(seq: 3, events: [], reset: true)) // core restarted
        #expect(relay.read(after: 117) == .fromCore, "core tells that client to start over")
        #expect(relay.read(after: 3) == .wait)
        relay.stop()
        #expect(await woken.next() != nil) // the reset's wake-up
        #expect(await woken.next() == nil, "stopping ends every stream")
    }
}
