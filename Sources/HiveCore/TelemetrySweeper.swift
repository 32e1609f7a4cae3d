import Foundation
import HiveBroker
import HiveTelemetry
import HiveWire
import Logging
import ServiceLifecycle

/// Keeps every agent's telemetry small: events older than a week and turn stats older than 90 days (by
/// default) are deleted in batches, at boot and then every `interval`, also for agents that are stopped.
struct TelemetrySweeper: Service {
    let layout: HiveLayout
    let broker: Broker
    let eventsWindow: Double
    let statsWindow: Double
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            let (events, turns) = await onThread { sweepAll() }
            if events + turns > 0 { logger.info("telemetry retention swept \(events) events and \(turns) turn-stats rows") }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    private func sweepAll() -> (Int, Int) {
        var events = 0, turns = 0
        for agent in (try? broker.agents()) ?? [] {
            guard let name = try? AgentName(agent.record.name) else { continue }
            let dir = layout.harnessDir(name)
            let eventsPath = dir.appending(path: "events.sqlite").path
            let statsPath = dir.appending(path: "turn-stats.sqlite").path
            do {
                if FileManager.default.fileExists(atPath: eventsPath) {
                    events += try EventStore(path: eventsPath).sweep(olderThan: eventsWindow)
                }
                if FileManager.default.fileExists(atPath: statsPath) {
                    turns += try TurnStatsStore(path: statsPath).sweep(olderThan: statsWindow)
                }
            } catch {
                logger.warning("telemetry sweep of \(name) failed: \(error)")
            }
        }
        return (events, turns)
    }
}
