/// A token bucket: `burst` tokens at most, refilled at `refillPerSecond`. A plain value: the caller
/// passes the time, so tests drive it with any clock.
public struct TokenBucket: Sendable, Equatable {
    public let burst: Double
    public let refillPerSecond: Double
    public private(set) var tokens: Double
    public private(set) var updatedAt: Double

    public init(burst: Double, refillPerSecond: Double, now: Double) {
        self.burst = burst
        self.refillPerSecond = refillPerSecond
        self.tokens = burst
        self.updatedAt = now
    }

    /// Takes one token if there is one; otherwise says how many seconds until there will be.
    public mutating func take(now: Double) -> Result<Void, Wait> {
        refill(now: now)
        if tokens >= 1 {
            tokens -= 1
            return .success(())
        }
        let seconds = refillPerSecond > 0 ? (1 - tokens) / refillPerSecond : .infinity
        return .failure(Wait(seconds: seconds))
    }

    /// Gives back a token taken for something that was then refused for another reason.
    public mutating func refund() {
        tokens = min(burst, tokens + 1)
    }

    /// Seconds until a token is available.
    public struct Wait: Error, Sendable, Equatable {
        public let seconds: Double
    }

    private mutating func refill(now: Double) {
        let elapsed = max(0, now - updatedAt)
        tokens = min(burst, tokens + elapsed * refillPerSecond)
        updatedAt = max(updatedAt, now)
    }
}
