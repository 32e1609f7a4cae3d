import HiveBroker
import Logging
import ServiceLifecycle

/// Once a second: expires open questions whose time ran out and sends whatever messages questions still
/// owe (after a crash between a question's commit and its message, this is what sends it).
struct QuestionExpirer: Service {
    let broker: Broker
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                let n = try broker.expireQuestions()
                if n > 0 { logger.info("\(n) question(s) expired unanswered; their askers were told") }
            } catch {
                logger.error("expiring questions failed: \(error)")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}
