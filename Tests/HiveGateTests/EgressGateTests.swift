import HiveGate
import HiveWire
import Testing

/// A resolver that answers from a table and never touches the network.
struct StubResolver: NameResolver {
    let table: [String: [String]]
    func resolve(_ host: String) throws -> [IPAddress] {
        guard let list = table[host] else { throw ResolveError(host: host, reason: "unknown") }
        return list.compactMap(IPAddress.init)
    }
}

@Suite("egress gate")
struct EgressGateTests {
    let gate = EgressGate(policy: try! EgressPolicy(allow: ["pypi.org", "rebind.example", "*.cdn.example", "198.51.100.9"]),
                          resolver: StubResolver(table: ["pypi.org": ["151.101.0.223", "2a04:4e42::223"],
                                                         "rebind.example": ["93.184.216.34", "127.0.0.1"],
                                                         "img.cdn.example": ["10.0.0.8"]]))

    @Test("an allowed name is dialled at the addresses the gateway resolved")
    func allowed() {
        #expect(gate.decide(host: "pypi.org", port: 443, plain: false) == .dial([IPAddress("151.101.0.223")!, IPAddress("2a04:4e42::223")!], port: 443))
        #expect(gate.decide(host: "198.51.100.9", port: 443, plain: false) == .dial([IPAddress("198.51.100.9")!], port: 443))
    }

    @Test("allowed names that resolve inside the host's networks, unknown names and unlisted ones are refused")
    func refused() {
        guard case .refuse(let rebind) = gate.decide(host: "rebind.example", port: 443, plain: false) else { Issue.record("dialled"); return }
        #expect(rebind.contains("127.0.0.1"))
        guard case .refuse = gate.decide(host: "img.cdn.example", port: 443, plain: false) else { Issue.record("dialled 10/8"); return }
        #expect(gate.decide(host: "x.cdn.example", port: 443, plain: false) == .refuse("x.cdn.example does not resolve"))
        #expect(gate.decide(host: "evil.com", port: 443, plain: false) == .refuse("evil.com is not on this agent's allow-list"))
    }

    @Test("the host's resolver answers from /etc/hosts without the network, and the answer for localhost is refused")
    func systemResolver() throws {
        let local = try SystemResolver().resolve("localhost")
        #expect(!local.isEmpty && local.allSatisfy(\.isInternal))
        let gate = EgressGate(policy: try EgressPolicy(allow: ["localhost"]))
        guard case .refuse = gate.decide(host: "localhost", port: 443, plain: false) else { Issue.record("dialled localhost"); return }
    }

    @Test("the budget: connections up to the cap, bytes per minute with an even refill")
    func budget() {
        var b = EgressBudget(bytesPerMinute: 6000, maxConnections: 2, now: 0)
        #expect(b.connect() == nil && b.connect() == nil)
        #expect(b.connect() != nil, "a third connection waits for one to close")
        b.disconnect()
        #expect(b.connect() == nil)
        #expect(b.take(6000, now: 0) == 0, "a minute's worth goes at once")
        #expect(b.take(100, now: 0) == 1, "then 100 bytes wait a second at 100 B/s")
        #expect(b.take(100, now: 3) == 0, "three seconds later 300 more had come in")
        #expect(b.take(1_000_000, now: 1000) > 0, "the allowance never grows past a minute's worth")
    }
}
