import Foundation
import HiveBroker
import HiveWire
import Logging
import ServiceLifecycle
import Synchronization

/// Fires due reminders. Sleeps until the next due time (no polling interval), woken early when a sooner
/// reminder is set; delivers in batches, each one transaction; stops on graceful shutdown after the batch
/// in progress has committed or rolled back whole.
final class ReminderScheduler: Service, Sendable {
    private let broker: any HiveStore
    private let logger: Logger
    /// Most reminders fired in one transaction: small enough that ordinary sends waiting behind it for
    /// the writer keep their latency (docs/benchmarks.md), large enough to fire thousands a second.
    let batchSize: Int
    private let condition = NSCondition()
    private let flags = Mutex((kicked: false, stopping: false))

    /// Seconds between back-to-back batches (see the loop).
    let pauseBetweenBatches: Double

    init(broker: any HiveStore, logger: Logger, batchSize: Int = 32, pauseBetweenBatches: Double = 0.0005) {
        self.pauseBetweenBatches = pauseBetweenBatches
        self.broker = broker
        self.logger = logger
        self.batchSize = batchSize
    }

    /// A reminder was set or cancelled: look at the schedule again.
    func kick() {
        condition.lock()
        flags.withLock { $0.kicked = true }
        condition.signal()
        condition.unlock()
    }

    func run() async throws {
        let done = Mutex<CheckedContinuation<Void, Never>?>(nil)
        await withGracefulShutdownHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                done.withLock { $0 = c }
                Thread { [self] in
                    loop()
                    done.withLock { $0?.resume(); $0 = nil }
                }.start()
            }
        } onGracefulShutdown: { [self] in
            condition.lock()
            flags.withLock { $0.stopping = true }
            condition.signal()
            condition.unlock()
        }
    }

    private var stopping: Bool { flags.withLock { $0.stopping } }

    private func loop() {
        var failures = 0
        // On a hive on many hosts, other nodes set reminders this one is not told of: look at the schedule
        // at least every second there (one indexed MIN a second), and fire only while this node holds the duty.
        let horizon: Double = broker.nodeName == nil ? 3600 : 1
        while !stopping {
            guard broker.holds(.reminders) else {
                sleep(until: Date(timeIntervalSinceNow: 1))
                continue
            }
            do {
                let fired = try broker.deliverDueReminders(limit: batchSize)
                if fired.failed > 0 { logger.warning("\(fired.failed) reminder(s) could not be delivered (their agent is gone)") }
                failures = 0
                if fired.delivered + fired.failed > 0 {
                    // More are due. Step aside for a moment first, so sends queued behind this batch get the
                    // writer before the next one (the writer is not fair between threads by itself).
                    usleep(useconds_t(pauseBetweenBatches * 1_000_000))
                    continue
                }
            } catch {
                failures += 1
                logger.error("reminder delivery failed: \(error)")
                try? broker.recordFailedDelivery(error: "\(error)", limit: batchSize)
            }
            let next = (try? broker.nextReminderDue()) ?? nil
            let now = Date().timeIntervalSince1970
            // Sleep until the next due time; after a failure, back off instead of retrying a broken batch at once.
            // With nothing scheduled, look again in an hour anyway (NSCondition on Linux traps on
            // `.distantFuture`, and an hour costs nothing); a new reminder kicks the loop earlier.
            var wake = Date(timeIntervalSince1970: min(max(next ?? .infinity, now), now + horizon))
            if failures > 0 { wake = max(wake, Date(timeIntervalSinceNow: min(60, pow(2, Double(failures))))) }
            sleep(until: wake)
        }
    }

    /// Waits until `wake`, a kick or shutdown.
    private func sleep(until wake: Date) {
        condition.lock()
        while !flags.withLock({ $0.kicked || $0.stopping }) && Date() < wake {
            _ = condition.wait(until: wake)
        }
        flags.withLock { $0.kicked = false }
        condition.unlock()
    }
}

/// Per-agent limits on setting reminders: a cap on pending ones, and a token bucket on how fast.
public final class ReminderLimits: Sendable {
    /// The limits (from the agent's config once it has one; these defaults until then).
    public struct Policy: Sendable {
        /// Most reminders an agent may have pending.
        public var cap = 100
        /// Reminders an agent may set in a burst.
        public var burst = 20.0
        /// Tokens per second: one a minute by default.
        public var refillPerSecond = 1.0 / 60
        /// Longest delay accepted.
        public var horizon: Double = 366 * 86400
        public init() {}
    }
    /// The core's flags: the limits of an agent whose config sets none.
    let defaultPolicy: Policy
    private let overrides = Mutex([AgentName: Policy]())
    private let buckets = Mutex([AgentName: TokenBucket]())

    init(policy: Policy) { self.defaultPolicy = policy }

    /// The limits `agent` works under.
    func policy(for agent: AgentName) -> Policy {
        overrides.withLock { $0[agent] } ?? defaultPolicy
    }

    /// Sets an agent's own limits (from its deployed config), or nil for the defaults; its bucket starts full.
    func set(_ agent: AgentName, _ policy: Policy?) {
        overrides.withLock { $0[agent] = policy }
        buckets.withLock { _ = $0.removeValue(forKey: agent) }
    }

    /// Returns the token of a request refused for another reason (the cap, a storage error).
    func refund(_ agent: AgentName) {
        buckets.withLock { $0[agent]?.refund() }
    }

    /// Takes a token for `agent`, or throws a refusal that says when to try again.
    func take(_ agent: AgentName, now: Double = Date().timeIntervalSince1970) throws(RequestError) {
        let policy = policy(for: agent)
        let result = buckets.withLock { b -> Result<Void, TokenBucket.Wait> in
            var bucket = b[agent] ?? TokenBucket(burst: policy.burst, refillPerSecond: policy.refillPerSecond, now: now)
            defer { b[agent] = bucket }
            return bucket.take(now: now)
        }
        if case .failure(let wait) = result {
            throw RequestError("reminder refused: you are setting reminders too fast (burst \(Int(policy.burst)), then one every \(Int((1 / policy.refillPerSecond).rounded())) s); try again in \(Int(wait.seconds.rounded(.up))) s")
        }
    }
}
