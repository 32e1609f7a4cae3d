import HiveBroker
import Logging
import ServiceLifecycle

/// Once a second: expires open questions whose time ran out and sends whatever messages questions still
/// owe (after a crash between a question's commit and its message, this is what sends it).
struct QuestionExpirer: Service {
    let broker: any HiveStore
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            // On a thread of its own: it writes and sends (group commit), which block.
            let broker = self.broker
            // One node of a hive on many hosts does this for all of them.
            guard broker.holds(.questions) else {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
                continue
            }
            switch await onThread({ Result { try broker.expireQuestions() } }) {
            case .success(let n) where n > 0: logger.info("\(n) question(s) expired unanswered; their askers were told")
            case .failure(let error): logger.error("expiring questions failed: \(error)")
            default: break
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}
