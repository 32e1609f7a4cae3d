import HiveBroker
import Logging
import ServiceLifecycle

/// Checkpoints the broker's WAL in the background, so that at ordinary rates the fsyncs of a checkpoint
/// are not paid inside a send (SQLite's automatic checkpoint runs inside the commit that crosses its
/// threshold).
struct WALCheckpointer: Service {
    let broker: Broker
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            let failure: (any Error)? = await onThread {
                do { try broker.checkpoint(); return nil } catch { return error }
            }
            if let failure { logger.warning("WAL checkpoint failed: \(failure)") }
        }
    }
}
