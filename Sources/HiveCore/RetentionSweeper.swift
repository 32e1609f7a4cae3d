import HiveBroker
import Logging
import ServiceLifecycle
import Synchronization

/// Deletes acked messages older than the retention window, at boot and then every `interval`.
final class RetentionSweeper: Service, Sendable {
    let broker: any HiveStore
    /// Seconds an acked message is kept.
    let window: Double
    let interval: Duration
    let logger: Logger
    private let stopping = Atomic<Bool>(false)

    init(broker: any HiveStore, window: Double, interval: Duration, logger: Logger) {
        self.broker = broker
        self.window = window
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            while !stopping.load(ordering: .relaxed) {
                // One node of a hive on many hosts sweeps for all of them; the others look again in a while.
                guard broker.holds(.retention) else {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: min(self.interval, .seconds(5))) }
                    continue
                }
                let swept: Result<Int, any Error> = await onThread { [self] in
                    Result {
                        try broker.sweep(olderThan: window, stop: { self.stopping.load(ordering: .relaxed) })
                            + broker.sweepReminders(olderThan: window) + broker.sweepQuestions(olderThan: window)
                            + broker.sweepGatewayLog(olderThan: window)
                            // Spend outlives messages: a month's cap and the 30-day totals need the whole month.
                            + broker.sweepSpend(olderThan: max(window, 400 * 86_400))
                    }
                }
                switch swept {
                case .success(let n) where n > 0:
                    logger.info("retention swept \(n) acked messages, finished reminders and closed questions older than \(Int(window / 86400)) days")
                case .failure(let error):
                    logger.error("retention sweep failed: \(error)")
                default:
                    break
                }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
        }
    }
}
