import Foundation
import GRDB
@testable import HiveBroker
import HiveWire
import Testing

/// What an upgrade does to the broker's data: an older hive's database is migrated in place, every
/// message kept (and searchable); a newer hive's database is refused, never run half-understood.
@Suite("Schema upgrades")
struct SchemaUpgradeTests {
    func path() throws -> String {
        let dir = URL(filePath: NSTemporaryDirectory()).appending(path: "schema-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appending(path: "broker.sqlite").path
    }

    @Test("a database written before budgets and search (v9) opens on this hive with every message, pending or acked, and the old ones are found by search")
    func olderMigrates() throws {
        let file = try path()
        do {
            let old = try DatabaseQueue(path: file)
            try Schema.migrator.migrate(old, upTo: "v9-gateway-log")
            try old.write { db in
                try db.execute(sql: "INSERT INTO agent (name, created_at) VALUES ('iris', 1)")
                for n in 0..<30 {
                    try db.execute(sql: "INSERT INTO message (sender, recipient, body, sent_at, acked_at) VALUES ('operator', 'iris', ?, ?, ?)",
                                   arguments: ["deploy step \(n) of the migration", Double(n + 1), n < 10 ? Double(n + 2) : nil])
                }
            }
            #expect(try old.read { try $0.tableExists("spend") } == false)
        }
        let broker = try Broker(path: file)
        let all = try broker.messages(after: 0, limit: 100)
        #expect(all.count == 30)
        #expect(try broker.counts("iris").unread == 20, "the 20 unacked are still waiting")
        let hits = try broker.search(try SearchQuery.parse("migration"), party: nil, limit: 100)
        #expect(hits.count == 30, "messages from before the index are indexed by the migration")
    }

    @Test("a database a newer hive migrated is refused with a message that names the unknown migration and the way back")
    func newerRefused() throws {
        let file = try path()
        _ = try Broker(path: file)
        let q = try DatabaseQueue(path: file)
        try q.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
        try q.close()
        #expect {
            _ = try Broker(path: file)
        } throws: { error in
            let text = "\(error)"
            return text.contains("newer hive") && text.contains("v99-from-the-future") && text.contains("Rollback")
        }
    }
}
