import Logging
import ServiceLifecycle

/// Runs a turn loop until graceful shutdown; the turn in progress is stopped (its claude process group
/// terminated) and its message stays unacked, so it is redelivered when the harness comes back.
public struct HarnessService: Service {
    public let loop: TurnLoop
    public init(loop: TurnLoop) { self.loop = loop }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await loop.run() }
    }
}
