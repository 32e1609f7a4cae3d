import Crypto
import Foundation
import GRDB
import HiveWire

/// The forge's records (`<root>/forge/forge.sqlite`): users and their token hashes, organisations and
/// members, repos. The repos themselves are bare git repos under `<root>/forge/repos/<owner>/<name>.git`.
public final class ForgeStore: Sendable {
    private let db: DatabaseQueue

    public struct Repo: Sendable, Equatable {
        public var id: Int64
        public var owner: String
        public var name: String
        public var description: String
        public var isPrivate: Bool
        public var createdAt: Double
        public var fullName: String { "\(owner)/\(name)" }
    }

    public init(path: String) throws {
        db = try DatabaseQueue(path: path)
        var m = DatabaseMigrator()
        m.registerMigration("v1-forge") { db in
            try db.execute(sql: """
                CREATE TABLE forge_user (name TEXT PRIMARY KEY NOT NULL, admin INTEGER NOT NULL DEFAULT 0,
                                         token_sha256 TEXT, created_at REAL NOT NULL, revoked_at REAL);
                CREATE UNIQUE INDEX forge_user_token ON forge_user(token_sha256) WHERE token_sha256 IS NOT NULL;
                CREATE TABLE forge_org (name TEXT PRIMARY KEY NOT NULL, default_role TEXT, created_at REAL NOT NULL);
                CREATE TABLE forge_member (org TEXT NOT NULL, user TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (org, user));
                CREATE TABLE forge_repo (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL, name TEXT NOT NULL,
                                         description TEXT NOT NULL DEFAULT '', private INTEGER NOT NULL DEFAULT 1,
                                         created_at REAL NOT NULL, UNIQUE (owner, name));
                """)
        }
        try m.migrate(db)
    }

    static func hash(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Gives `user` a fresh token (the old one stops working) and returns it; the store keeps only its hash.
    public func issueToken(_ user: String, admin: Bool = false) throws -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = rng.next() }
        let token = "hive_" + bytes.map { String(format: "%02x", $0) }.joined()
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO forge_user (name, admin, token_sha256, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET token_sha256 = excluded.token_sha256, admin = excluded.admin, revoked_at = NULL
                """, arguments: [user, admin, Self.hash(token), Date().timeIntervalSince1970])
        }
        return token
    }

    /// The user a token belongs to (nil: unknown or revoked).
    public func user(token: String) throws -> (name: String, admin: Bool)? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT name, admin FROM forge_user WHERE token_sha256 = ? AND revoked_at IS NULL",
                             arguments: [Self.hash(token)]).map { ($0["name"], $0["admin"]) }
        }
    }

    /// The user's token stops working (the agent was destroyed).
    public func revoke(_ user: String) throws {
        try db.write { db in
            try db.execute(sql: "UPDATE forge_user SET token_sha256 = NULL, revoked_at = ? WHERE name = ?",
                           arguments: [Date().timeIntervalSince1970, user])
        }
    }

    public func isActiveUser(_ name: String) throws -> Bool {
        try db.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM forge_user WHERE name = ? AND revoked_at IS NULL", arguments: [name]) ?? false }
    }

    public func createOrg(_ name: String, defaultRole: ForgeAccess.Role?) throws {
        try db.write { db in
            try db.execute(sql: "INSERT OR IGNORE INTO forge_org (name, default_role, created_at) VALUES (?, ?, ?)",
                           arguments: [name, defaultRole?.rawValue, Date().timeIntervalSince1970])
        }
    }

    public func setMember(org: String, user: String, role: ForgeAccess.Role?) throws {
        try db.write { db in
            if let role {
                try db.execute(sql: "INSERT INTO forge_member (org, user, role) VALUES (?, ?, ?) ON CONFLICT(org, user) DO UPDATE SET role = excluded.role",
                               arguments: [org, user, role.rawValue])
            } else {
                try db.execute(sql: "DELETE FROM forge_member WHERE org = ? AND user = ?", arguments: [org, user])
            }
        }
    }

    public func isOrg(_ name: String) throws -> Bool {
        try db.read { db in try Bool.fetchOne(db, sql: "SELECT 1 FROM forge_org WHERE name = ?", arguments: [name]) ?? false }
    }

    /// `user`'s role in `org`: its membership, else the organisation's default for every user.
    public func role(of user: String, in org: String) throws -> ForgeAccess.Role? {
        try db.read { db in
            let member = try String.fetchOne(db, sql: "SELECT role FROM forge_member WHERE org = ? AND user = ?", arguments: [org, user])
            let fallback = try String.fetchOne(db, sql: "SELECT default_role FROM forge_org WHERE name = ?", arguments: [org])
            return (member ?? fallback).flatMap(ForgeAccess.Role.init(rawValue:))
        }
    }

    public func repo(owner: String, name: String) throws -> Repo? {
        try db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM forge_repo WHERE owner = ? AND name = ?", arguments: [owner, name]).map(Self.repo) }
    }

    public func allRepos() throws -> [Repo] {
        try db.read { db in try Row.fetchAll(db, sql: "SELECT * FROM forge_repo ORDER BY owner, name").map(Self.repo) }
    }

    /// Records a new repo; a taken name is a conflict.
    public func addRepo(owner: String, name: String, description: String, isPrivate: Bool) throws -> Repo {
        try db.write { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM forge_repo WHERE owner = ? AND name = ?", arguments: [owner, name]) == true {
                throw ForgeError.conflict("\(owner)/\(name) already exists")
            }
            try db.execute(sql: "INSERT INTO forge_repo (owner, name, description, private, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [owner, name, description, isPrivate, Date().timeIntervalSince1970])
            return try Row.fetchOne(db, sql: "SELECT * FROM forge_repo WHERE id = ?", arguments: [db.lastInsertedRowID]).map(Self.repo)!
        }
    }

    public func removeRepo(_ id: Int64) throws {
        try db.write { db in try db.execute(sql: "DELETE FROM forge_repo WHERE id = ?", arguments: [id]) }
    }

    private static func repo(_ row: Row) -> Repo {
        Repo(id: row["id"], owner: row["owner"], name: row["name"], description: row["description"], isPrivate: row["private"],
             createdAt: row["created_at"])
    }
}
