import HiveWire
import Testing

@Suite("Agent names")
struct AgentNameTests {
    @Test("short lowercase identifiers are accepted", arguments: ["iris", "a", "build-2", "x1-y2", String(repeating: "a", count: 31)])
    func accepts(_ raw: String) throws {
        #expect(try AgentName.spawnable(raw).rawValue == raw)
    }

    @Test("anything that could name a path or is not an identifier is refused",
          arguments: ["", "..", ".", "/", "a/b", "../etc", "/etc/passwd", "Iris", "1abc", "-a", "a b", "a_b", "a.b", "ä", "a\u{0}b",
                      String(repeating: "a", count: 32)])
    func refuses(_ raw: String) {
        #expect(throws: NameError.self) { try AgentName(raw) }
    }

    @Test("reserved names are valid names but cannot be spawned", arguments: ["operator", "manager", "reminder", "system", "hive"])
    func reserved(_ raw: String) throws {
        _ = try AgentName(raw)
        #expect(throws: NameError.reserved(raw)) { try AgentName.spawnable(raw) }
    }

    @Test("refusals explain what to type instead")
    func messages() {
        #expect(NameError.badCharacters("..").description.contains("lowercase letter"))
        #expect(NameError.empty.description.contains("empty"))
    }

    @Test("recipients: agents, the operator and the broadcast address")
    func recipients() throws {
        #expect(try Recipient("operator") == .operator)
        #expect(try Recipient("*") == .broadcast)
        #expect(try Recipient("manager") == .agent(.manager))
        #expect(throws: NameError.self) { try Recipient("../x") }
    }
}
