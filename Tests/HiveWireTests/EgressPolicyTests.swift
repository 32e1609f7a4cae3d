@testable import HiveWire
import Testing

/// The gated network's allow-list: what a prompt-injected agent may and may not reach by name, port,
/// scheme and address.
@Suite("egress policy")
struct EgressPolicyTests {
    let policy = try! EgressPolicy(allow: ["pypi.org", "*.githubusercontent.com", "api.example.com:8443", "http://mirror.example.net",
                                           "203.0.113.7", "[2001:db8::7]:8080"])

    @Test("listed names on their ports pass; case and a trailing dot do not matter")
    func allowed() {
        #expect(policy.refusal(host: "pypi.org", port: 443, plain: false) == nil)
        #expect(policy.refusal(host: "PyPI.org.", port: 443, plain: false) == nil)
        #expect(policy.refusal(host: "raw.githubusercontent.com", port: 443, plain: false) == nil)
        #expect(policy.refusal(host: "api.example.com", port: 8443, plain: false) == nil)
        #expect(policy.refusal(host: "mirror.example.net", port: 80, plain: true) == nil)
        #expect(policy.refusal(host: "203.0.113.7", port: 443, plain: false) == nil)
        #expect(policy.refusal(host: "2001:db8::7", port: 8080, plain: false) == nil)
    }

    @Test("everything else is refused with a reason: other hosts, look-alikes, ports, plain HTTP, address literals")
    func refused() {
        #expect(policy.refusal(host: "evil.com", port: 443, plain: false) == "evil.com is not on this agent's allow-list")
        #expect(policy.refusal(host: "pypi.org.evil.com", port: 443, plain: false) != nil)
        #expect(policy.refusal(host: "evilpypi.org", port: 443, plain: false) != nil)
        #expect(policy.refusal(host: "githubusercontent.com", port: 443, plain: false) != nil, "*.x covers hosts under x, not x")
        #expect(policy.refusal(host: "pypi.org", port: 22, plain: false) == "pypi.org:22 is not on the allow-list (that host is, on another port)")
        #expect(policy.refusal(host: "pypi.org", port: 80, plain: true)?.contains("HTTPS only") == true)
        #expect(policy.refusal(host: "mirror.example.net", port: 443, plain: false) != nil, "an http:// entry opens plain HTTP only")
        #expect(policy.refusal(host: "127.0.0.1", port: 443, plain: false)?.contains("is an address") == true)
        #expect(policy.refusal(host: "203.0.113.8", port: 443, plain: false) != nil)
        #expect(policy.refusal(host: "pypi.org\u{0}.evil", port: 443, plain: false) != nil)
        #expect(policy.refusal(host: "", port: 443, plain: false) != nil)
    }

    @Test("an empty allow-list refuses every destination (the model and the forge go their own way)")
    func empty() throws {
        let none = try EgressPolicy(allow: [])
        #expect(none.refusal(host: "pypi.org", port: 443, plain: false) != nil)
    }

    @Test("bad entries are named one by one")
    func badEntries() {
        #expect(throws: EgressPolicyError.self) { try EgressPolicy(allow: ["*"]) }
        do {
            _ = try EgressPolicy(allow: ["ok.example", "a.*.example", "https://x.example/path", "x.example:99999", "*.com", "user@x.example", "ünï.example"])
            Issue.record("accepted")
        } catch {
            #expect(error.problems.count == 6, "\(error.problems)")
            #expect(error.problems.first?.hasPrefix("[1] 'a.*.example'") == true)
        }
        #expect(throws: EgressPolicyError.self) { try EgressPolicy(allow: Array(repeating: "x.example", count: 257)) }
    }

    @Test("after resolving: loopback, private, link-local, CGNAT, mapped and multicast addresses are refused, public ones pass")
    func resolved() {
        for inner in ["127.0.0.1", "127.8.8.8", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                         "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "ff02::1",
                         "64:ff9b::7f00:1"] {
            #expect(EgressPolicy.refusal(resolved: [IPAddress(inner)!]) != nil, "\(inner)")
        }
        for outer in ["93.184.216.34", "172.32.0.1", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            #expect(EgressPolicy.refusal(resolved: [IPAddress(outer)!]) == nil, "\(outer)")
        }
        #expect(EgressPolicy.refusal(resolved: [IPAddress("1.1.1.1")!, IPAddress("127.0.0.1")!]) != nil, "one internal address refuses the name")
        #expect(EgressPolicy.refusal(resolved: []) == "the name does not resolve")
        #expect(IPAddress("127.1") == nil && IPAddress("0x7f.0.0.1") == nil, "no resolver shorthands")
    }
}
