import HiveBroker
import Logging
import ServiceLifecycle

/// Deletes acked messages older than the retention window, at boot and then every `interval`.
struct RetentionSweeper: Service {
    let broker: Broker
    /// Seconds an acked message is kept.
    let window: Double
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                let n = try await broker.sweep(olderThan: window)
                if n > 0 { logger.info("retention swept \(n) acked messages older than \(Int(window / 86400)) days") }
            } catch is CancellationError {
                return
            } catch {
                logger.error("retention sweep failed: \(error)")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
