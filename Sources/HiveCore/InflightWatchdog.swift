import HiveBroker
import HiveWire
import Logging
import ServiceLifecycle

/// Puts messages back in the inbox when they were handed out but nothing is connected to work on them
/// (the harness died mid-turn and has not come back). A harness requeues on its own start too; this
/// covers the one that never comes back, so the next one, or a manual `hive agent`, gets them.
struct InflightWatchdog: Service {
    let broker: any HiveStore
    let sockets: AgentSockets
    let logger: Logger
    /// How long an agent may be unattended before its in-flight messages are requeued.
    var grace: Duration = .seconds(30)
    var interval: Duration = .seconds(10)

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            let now = ContinuousClock.now
            for (name, since) in sockets.unattended() where now - since >= grace {
                let n = await onThread { (try? broker.requeueInflight(name)) ?? 0 }
                if n > 0 { logger.warning("requeued \(n) message(s) of \(name): handed out, but nothing has been connected for \(grace)") }
            }
        }
    }
}
