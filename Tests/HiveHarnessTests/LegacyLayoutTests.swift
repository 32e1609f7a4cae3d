import Foundation
@testable import HiveHarness
import Testing

@Suite("Legacy layout migration")
struct LegacyLayoutTests {
    @Test("harness files in state/ move to harness/ once, with their WAL, logged; taken names go to legacy/; notes stay")
    func migrate() throws {
        let base = FileManager.default.temporaryDirectory.appending(path: "hive-legacy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let state = base + "/state", harness = base + "/harness"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: harness, withIntermediateDirectories: true)
        for (name, text) in [("hyperhive-events.sqlite", "E"), ("hyperhive-events.sqlite-wal", "W"), ("hyperhive-turn-stats.sqlite", "T"),
                             ("hyperhive-model", "opus"), ("notes.md", "mine")] {
            try Data(text.utf8).write(to: URL(filePath: state + "/" + name))
        }
        try Data("newer".utf8).write(to: URL(filePath: harness + "/turn-stats.sqlite"))

        let moved = try LegacyLayout.migrate(stateDir: state, harnessDir: harness)
        #expect(moved.count == 3)
        func read(_ p: String) -> String? { FileManager.default.contents(atPath: p).map { String(decoding: $0, as: UTF8.self) } }
        #expect(read(harness + "/events.sqlite") == "E")
        #expect(read(harness + "/events.sqlite-wal") == "W", "the WAL moves with its database")
        #expect(read(harness + "/model") == "opus")
        #expect(read(harness + "/turn-stats.sqlite") == "newer", "an existing file is never overwritten")
        #expect(read(harness + "/legacy/hyperhive-turn-stats.sqlite") == "T", "nothing is lost")
        #expect(read(state + "/notes.md") == "mine", "the agent's own files stay")
        #expect(!FileManager.default.fileExists(atPath: state + "/hyperhive-events.sqlite"))
        #expect(read(harness + "/migrations.log")?.split(separator: "\n").count == 3)

        #expect(try LegacyLayout.migrate(stateDir: state, harnessDir: harness).isEmpty, "a second run does nothing")
        #expect(read(harness + "/migrations.log")?.split(separator: "\n").count == 3)
    }
}
