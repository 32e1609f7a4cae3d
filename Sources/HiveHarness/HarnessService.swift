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

/// Keeps the harness's own stores small: events and turn stats past their retention windows are deleted
/// in batches, at start and then every `sweepInterval`. The harness does this itself, as the agent.
public struct StoreSweeper: Service {
    public let loop: TurnLoop
    public init(loop: TurnLoop) { self.loop = loop }

    public func run() async throws {
        let c = loop.config
        while !Task.isShuttingDownGracefully {
            _ = try? loop.events.sweep(olderThan: c.eventsRetention)
            _ = try? loop.stats.sweep(olderThan: c.statsRetention)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(c.sweepInterval)) }
        }
    }
}
