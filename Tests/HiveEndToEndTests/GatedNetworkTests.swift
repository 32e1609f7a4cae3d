import Foundation
import HiveClient
import HiveWire
import ModelStandIn
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The gated network with the real CLI: the cage holds loopback only, claude reaches the model through
/// core's gateway (which adds the credential and meters the answer), and its shell reaches only what the
/// allow-list names, through the gateway's CONNECT proxy, with names resolved by the gateway.
@Suite("Gated network", .serialized, .timeLimit(.minutes(3)))
struct GatedNetworkTests {
    @Test("a gated agent answers with no credential in its cage; its shell reaches an allowed name and nothing else; no DNS; every decision is logged with its tokens")
    func gatedCage() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else { return } // the cage is the point
        let api = try await ModelStandIn()
        defer { Task { await api.stop() } }
        // "allowed.test" is a second stand-in on loopback: pinned by the operator, its internal address let through.
        let allowed = try await ModelStandIn()
        defer { Task { await allowed.stop() } }
        let hive = try LiveHive()
        try await hive.start(extra: ["--egress-resolve", "allowed.test=127.0.0.1", "--egress-resolve", "inside.test=127.0.0.1",
                                     "--egress-allow-internal", "127.0.0.1:\(allowed.port)"],
                             cage: "bwrap", environment: try RealClaude.environment(api: api))
        try await hive.spawnIdle("iris")
        let deployed = try await hive.deploy("iris", #"{"network": "gated", "models": [], "egress": {"allow": ["allowed.test:\#(allowed.port)", "inside.test:\#(api.port)"]}}"#)
        #expect(deployed.state == .deployed, "\(deployed.note ?? "")")
        try await hive.eventually("iris is back in its gated cage") {
            let row = try await hive.agentRow("iris")
            return row?.state == .idle && row?.cage?.hasPrefix("bwrap, network gated") == true
        }

        // What a prompt-injected agent would try from its shell, each result on a line of its own.
        let proxy = "-p -x http://127.0.0.1:3128"
        let script = """
            connect() { curl -s -m 5 --noproxy '' -o /dev/null -w '%{http_connect}' \(proxy) "$@" ; }
            {
              echo "allowed=$(curl -s -m 5 -o /dev/null -w '%{http_code}' \(proxy) -X POST -d '{}' http://allowed.test:\(allowed.port)/v1/from-the-cage)"
              echo "unlisted=$(connect http://evil.test:443/)"
              echo "other_port=$(connect http://allowed.test:22/)"
              echo "literal=$(connect http://127.0.0.1:\(allowed.port)/)$(connect http://10.1.2.3:443/)"
              echo "internal=$(connect http://inside.test:\(api.port)/)"
              echo "direct=$(curl -s -m 3 --noproxy '*' -o /dev/null -w '%{http_code}' http://127.0.0.1:\(api.port)/v1/messages)"
              echo "dns=$(getent hosts allowed.test >/dev/null 2>&1 && echo resolves || echo none)"
              echo "model_other=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -d '{"model":"claude-opus-4-1","max_tokens":1,"messages":[]}' http://127.0.0.1:4180/v1/messages)"
              echo "model_twice=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -d '{"model":"claude-sonnet-4-5","model":"claude-opus-4-1"}' http://127.0.0.1:4180/v1/messages)"
              echo "other_api=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST -d '{}' http://127.0.0.1:4180/v1/files)"
              echo "key=$(printenv ANTHROPIC_API_KEY)"
              echo "secret_seen=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c sk-ant-api03-test)"
              echo "run=$(ls /run/hive | tr '\\n' ' ')"
              echo "page=$(curl -s -m 5 --unix-socket /run/hive/page/web.sock http://agent/network | grep -c 'evil.test:443')"
            } > net.tmp && mv net.tmp net.txt
            """
        try Data(script.utf8).write(to: hive.root.appending(path: "agents/iris/state/net.sh"))
        _ = try await hive.admin().call(SendCommand(to: "iris", body: """
            @tool Bash {"command":"sh net.sh"}
            @tool send {"to":"operator","body":"probed the network"}
            """))
        _ = try await RealClaudeTests.awaitOperator(hive, containing: "probed the network")
        let text = try String(contentsOf: hive.root.appending(path: "agents/iris/state/net.txt"), encoding: .utf8)
        var seen: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            seen[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        #expect(seen["allowed"] == "404" && allowed.requests.contains { $0.path == "/v1/from-the-cage" }, "the allowed name's stand-in was reached: \(text)")
        #expect(seen["unlisted"] == "403" && seen["other_port"] == "403" && seen["literal"] == "403403", "\(text)")
        #expect(seen["internal"] == "403", "a listed name resolving to loopback does not reach the host's own services: \(text)")
        #expect(seen["direct"] == "000", "nothing leaves the cage but through the gateway: \(text)")
        #expect(seen["dns"] == "none", "the cage resolves no names")
        #expect(seen["model_other"] == "403" && seen["model_twice"] == "400" && seen["other_api"] == "404", "only approved models, only the Messages API: \(text)")
        #expect(seen["key"] == "sk-ant-api03-held-by-the-hive-gateway" && seen["secret_seen"] == "0", "no process in the cage holds the credential: \(text)")
        #expect(seen["run"] == "egress.sock forge.sock mcp.sock model.sock page ", "its own ends only: \(text)")
        #expect((Int(seen["page"] ?? "") ?? 0) >= 1, "the agent's page shows its gateway's refusals: \(text)")

        // Every model request the API saw carried the credential the gateway added, never the placeholder.
        #expect(!api.messageRequests.isEmpty && api.messageRequests.allSatisfy { $0.headers["x-api-key"] == "sk-ant-api03-test" })
        #expect(api.messageRequests.allSatisfy { ($0.json["model"] as? String)?.contains("sonnet") == true })

        let reply = try await hive.admin().call(GatewayLogCommand(agent: "iris", limit: 100))
        let log = reply.entries
        let today = try #require(reply.spend.first { $0.period == "today" })
        #expect(today.answers == log.filter { $0.kind == .model && $0.usage != nil }.count && today.usd > 0 && today.unpriced.isEmpty,
                "the metered answers are priced: \(today)")
        #expect(log.filter { $0.usage != nil }.allSatisfy { ($0.usd ?? 0) > 0 }, "\(log.filter { $0.usage != nil })")
        let answered = log.filter { $0.kind == .model && $0.allowed && $0.status == 200 }
        #expect(!answered.isEmpty && answered.allSatisfy { ($0.usage?.input ?? 0) > 0 && ($0.usage?.output ?? 0) > 0 }, "the meter read each answer's tokens: \(answered)")
        #expect(log.contains { $0.kind == .model && !$0.allowed && $0.status == 403 && $0.note.contains("claude-opus-4-1") })
        #expect(log.contains { $0.kind == .connect && !$0.allowed && $0.destination == "evil.test:443" && $0.note.contains("allow-list") })
        #expect(log.contains { $0.kind == .connect && !$0.allowed && $0.destination.hasPrefix("inside.test") && $0.note.contains("127.0.0.1") })
        #expect(log.contains { $0.kind == .connect && $0.allowed && $0.destination == "allowed.test:\(allowed.port)" && $0.bytesOut > 0 && $0.bytesIn > 0 })
        let cli = try hive.cli(["net", "iris"])
        #expect(cli.status == 0 && cli.out.contains("REFUSED") && cli.out.contains("evil.test:443") && cli.out.contains("spend through the gateway: today $"),
                "\(cli.out)\(cli.err)")
    }
}
