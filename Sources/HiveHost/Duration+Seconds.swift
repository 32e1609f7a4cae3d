extension Duration {
    /// The duration in seconds, fractions included (leases, rates, benchmark timings).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
