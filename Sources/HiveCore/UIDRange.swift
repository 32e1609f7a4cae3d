import Foundation
import HiveHost
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The block of host uids one hive's cages run as (one uid per agent, never reused), unique on the host.
///
/// Two hives on one host must never hand out the same uid: an agent of one would own the other's files.
/// Each hive records its block in `<root>/uid-range` and claims it in a host-wide registry (one file per
/// block, named by its first uid and created with `O_EXCL`, holding the hive's root), so a second hive
/// picks the next free block. Blocks that hold any uid the host's passwd knows are skipped. A hive made
/// before blocks existed keeps the uids it already gave (its block is the first one, from 20000).
struct UIDRange: Codable, Equatable, Sendable {
    var first: Int
    var count: Int
    var last: Int { first + count - 1 }
    func contains(_ uid: Int) -> Bool { uid >= first && uid <= last }

    static let size = 10_000
    static let lowest = 20_000
    /// The highest block start tried (uids stay well below 2^31 and the 65534 of nobody is in a skipped block).
    static let highest = 2_000_000_000

    /// Where hives claim blocks: `$HIVE_UID_REGISTRY`, else /etc/hyperhive/uid-ranges.
    static var registry: URL {
        URL(filePath: ProcessInfo.processInfo.environment["HIVE_UID_REGISTRY"].flatMap { $0.isEmpty ? nil : $0 } ?? "/etc/hyperhive/uid-ranges")
    }

    /// The first block from `lowest` that nobody claimed and that holds no uid `taken` knows. Pure.
    static func choose(claimed: Set<Int>, taken: (ClosedRange<Int>) -> Bool) -> UIDRange? {
        var first = lowest
        while first <= highest {
            if !claimed.contains(first) && !taken(first...(first + size - 1)) { return UIDRange(first: first, count: size) }
            first += size
        }
        return nil
    }

    /// Whether any user or group of the host's databases has an id in `range` (cages run with their uid as
    /// their gid too).
    static func passwdHas(_ range: ClosedRange<Int>) -> Bool {
        setpwent()
        defer { endpwent() }
        while let entry = getpwent() {
            if range.contains(Int(entry.pointee.pw_uid)) { return true }
        }
        setgrent()
        defer { endgrent() }
        while let entry = getgrent() {
            if range.contains(Int(entry.pointee.gr_gid)) { return true }
        }
        return false
    }

    /// Whether a single id is taken on the host (a user or a group by that number, whatever the source).
    static func taken(_ id: Int) -> Bool { getpwuid(uid_t(id)) != nil || getgrgid(gid_t(id)) != nil }

    /// This hive's block: read from its root, or chosen and claimed now. Throws when another hive holds
    /// the recorded block, or nothing is free.
    static func claim(for layout: HiveLayout, legacy: Bool, logger: Logger) throws -> UIDRange {
        let file = layout.root.appending(path: "uid-range")
        let registry = Self.registry
        try FileManager.default.createDirectory(at: registry, withIntermediateDirectories: true)
        let me = layout.root.standardizedFileURL.path
        if let data = try? Data(contentsOf: file) {
            guard let range = try? JSONDecoder().decode(UIDRange.self, from: data), range.count > 0, range.first >= 1000 else {
                throw CoreError("\(file.path) is not a uid range this hive wrote; restore it (or remove it to choose a new block, if no cage ever ran)")
            }
            let owner = try? String(contentsOf: registry.appending(path: "\(range.first)"), encoding: .utf8)
            switch owner?.trimmingCharacters(in: .whitespacesAndNewlines) {
            case me?: return range
            case nil:
                guard register(range, root: me, in: registry) else {
                    throw CoreError("cannot claim this hive's uid block \(range.first)…\(range.last) in \(registry.path) (is it writable, and \(registry.appending(path: "\(range.first)").path) a file?)")
                }
                return range
            case let other?:
                throw CoreError("the uid block \(range.first)…\(range.last) of this hive (\(file.path)) is claimed by the hive at \(other): two hives must not share agent uids. Give one of them a new root, or remove the stale claim \(registry.appending(path: "\(range.first)").path) if that hive is gone")
            }
        }
        for _ in 0..<8 {
            let claimed = Set(((try? FileManager.default.contentsOfDirectory(atPath: registry.path)) ?? []).compactMap(Int.init))
            // A hive from before blocks has handed out uids from 20000: it keeps them if nobody claimed that block.
            let range: UIDRange
            if legacy, !claimed.contains(lowest) {
                range = UIDRange(first: lowest, count: size)
            } else {
                guard let chosen = choose(claimed: claimed, taken: passwdHas) else { throw CoreError("no free block of \(size) uids for agents on this host") }
                if legacy { logger.warning("this hive's agents had uids from \(lowest), a block another hive claims; its agents get new uids from \(chosen.first)") }
                range = chosen
            }
            guard register(range, root: me, in: registry) else { continue } // another hive won the race: choose again
            let data = try JSONEncoder().encode(range)
            guard FileManager.default.createFile(atPath: file.path, contents: data, attributes: [.posixPermissions: 0o644]) else {
                throw CoreError("cannot write \(file.path)")
            }
            logger.notice("agents of this hive run as uids \(range.first)…\(range.last) (claimed in \(registry.path))")
            return range
        }
        throw CoreError("could not claim a uid block in \(registry.path): other hives kept taking them")
    }

    /// Claims `range` for `root` (O_EXCL: only one hive can).
    private static func register(_ range: UIDRange, root: String, in registry: URL) -> Bool {
        let fd = open(registry.appending(path: "\(range.first)").path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array((root + "\n").utf8)
        return write(fd, bytes, bytes.count) == bytes.count
    }
}
