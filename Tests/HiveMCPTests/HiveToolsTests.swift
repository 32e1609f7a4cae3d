@testable import HiveMCP
import MCP
import Testing

/// The tool table: what claude is shown is what gets dispatched, and a wrong name is told what exists.
@Suite("hive tools")
struct HiveToolsTests {
    @Test("every tool is declared once, with an object schema whose required arguments it describes")
    func declarations() throws {
        let names = HiveTools.all.map(\.name)
        #expect(Set(names).count == names.count, "no tool twice")
        for tool in HiveTools.all {
            guard case .object(let schema) = tool.inputSchema, case .object(let properties)? = schema["properties"],
                  case .array(let required)? = schema["required"] else { Issue.record("\(tool.name): no object schema"); continue }
            for r in required { #expect(properties[r.stringValue ?? ""] != nil, "\(tool.name) requires an argument it does not describe") }
            #expect(!tool.description.isEmpty)
        }
    }

    @Test("agents see the nine messaging tools (search among them); the manager sees those and its seven")
    func visibility() {
        #expect(HiveTools.visible(manager: false).map(\.name) == ["send", "recv", "whoami", "status", "remind", "request_next_turn", "ask", "answer", "search"])
        #expect(HiveTools.visible(manager: true).count == 16)
        #expect(HiveTools.visible(manager: true).filter(\.managerOnly).map(\.name) == ["request_init_config", "request_apply_commit", "start_agent",
                                                                                       "stop_agent", "restart_agent", "update_agent", "agent_logs"])
    }

    @Test("an unknown tool is refused with every tool the caller has; arguments of the wrong type are named")
    func refusals() async throws {
        let client = ToolClient(socket: "/nonexistent/hive.sock")
        do {
            _ = try await client.call("sned", ToolArguments([:]))
            Issue.record("an unknown tool ran")
        } catch {
            #expect("\(error)" == "unknown tool 'sned'; the hive tools are send, recv, whoami, status, remind, request_next_turn, ask, answer, search")
        }
        #expect(throws: ToolError.self) { try ToolArguments(["max": .string("3")]).int("max", required: false) }
        #expect(try ToolArguments(["max": .double(3)]).int("max", required: false) == 3)
        #expect(try ToolArguments(["choices": .string("yes")]).strings("choices") == ["yes"])
        #expect(throws: ToolError.self) { try ToolArguments([:]).string("to") }
    }
}
