import AsyncHTTPClient
import Foundation
import HiveBroker
import HiveHost
import HiveHTTP
import HiveWire
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `hive move NAME --node N`, both ends (docs/multi-host.md, "Moving an agent").
///
/// On the node it leaves: the move is claimed in the database (one at a time per agent), the cage stops
/// and the socket closes (messages wait in the database), the state and harness directories are packed
/// (``AgentArchive``) and sent to the other node's endpoint with their SHA-256. On the node it reaches: the
/// archive is checked and unpacked beside the agent's directory as a uid reserved for it there, then the
/// move arrives in the database (placement and uid, one compare-and-set), and only then are the
/// directories swapped in and the agent started. A node that gives up calls the move off with the opposite
/// compare-and-set: exactly one wins, so the agent runs on one node, never two, and the old node's copy
/// is deleted only once the move arrived. Its inbox never moves.
struct AgentMoves: Sendable {
    let store: any HiveStore
    let lifecycle: Lifecycle
    let identity: NodeIdentity
    let configs: NodeConfigs
    /// Who packs an agent's directories here: its own uid (nil: core's, as its cages).
    let packer: @Sendable (AgentName) throws -> AgentArchive.Runner?
    /// A uid of this node reserved for an agent arriving (nil: cages run as core's uid).
    let arrivalUID: @Sendable () throws -> uid_t?
    let logger: Logger
    var layout: HiveLayout { lifecycle.layout }
    var here: String { store.nodeName ?? "" }
    var link: NodeLink { NodeLink(here: here, identity: identity) }
    let peers: PeerBook
    /// How long one move may take end to end (a large state dir on a slow link).
    static let patience: Duration = .seconds(1800)
    static let stagingPrefix = ".arriving-" // a leading dot: never an agent's name

    init(store: any HiveStore, lifecycle: Lifecycle, identity: NodeIdentity, configs: NodeConfigs, packer: @escaping @Sendable (AgentName) throws -> AgentArchive.Runner?,
         arrivalUID: @escaping @Sendable () throws -> uid_t?, logger: Logger) {
        self.store = store; self.lifecycle = lifecycle; self.identity = identity; self.configs = configs; self.packer = packer; self.arrivalUID = arrivalUID
        self.logger = logger; self.peers = PeerBook(store: store, logger: logger)
    }

    func spool(_ name: AgentName, _ way: String) -> URL {
        let dir = layout.nodeDir.appending(path: "spool")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Unique: a leftover of an interrupted move is never mistaken for this one's.
        return dir.appending(path: "\(name.rawValue).\(way).\(UUID().uuidString.prefix(8)).tar")
    }

    /// What an interrupted move left on this node: its spool goes; a staging directory stays (it may be an
    /// arrival's only copy) and is named in the log for the operator.
    static func sweep(_ layout: HiveLayout, logger: Logger) {
        try? FileManager.default.removeItem(at: layout.nodeDir.appending(path: "spool")) // root's alone
        let names = (try? FileManager.default.contentsOfDirectory(atPath: layout.agentsDir.path)) ?? []
        for name in names where name.hasPrefix(stagingPrefix) {
            logger.warning("an interrupted arrival left \(layout.agentsDir.appending(path: name).path): an agent's state and harness dirs; remove it once you know they are not needed")
        }
    }

    /// Moves `name` to node `target`, from wherever it is placed (a move asked elsewhere is handed to its node).
    func move(_ name: AgentName, to target: String) throws -> MoveCommand.Reply {
        guard name != .manager else {
            throw CoreError("the manager stays on the node that holds the hive's git side (config repos, approvals, the forge)")
        }
        guard let record = try store.agent(name), record.destroyedAt == nil else { throw BrokerError.unknownAgent(name.rawValue) }
        guard let from = try store.placements()[name.rawValue]?.node else { throw CoreError("\(name) is placed on no node") }
        guard from != target else { throw CoreError("\(name) is on node \(target) already") }
        guard let peer = try store.peer(target) else {
            throw CoreError("no node named '\(target)' serves an endpoint in this hive (hive nodes lists them; a node needs --node-listen)")
        }
        guard peer.up else { throw CoreError("node \(target) sends no heartbeat: move \(name) to a node that is up") }
        if from != here { return try handOver(name, to: target, at: from) }
        return try lifecycle.busy.during(name) {
            let begun: Bool
            do { begun = try store.beginMove(name, to: target) } catch {
                _ = try? store.callOffMove(name, to: target) // it may have committed: a move nobody sees through blocks the next
                throw error
            }
            guard begun else { throw CoreError("a move of \(name) is under way already") }
            return try leave(name, to: peer)
        }
    }

    /// Asks the agent's own node to move it.
    private func handOver(_ name: AgentName, to target: String, at node: String) throws -> MoveCommand.Reply {
        guard let peer = try store.peer(node), peer.up else { throw CoreError("\(name) is on node \(node), which is down or serves no endpoint: it cannot leave it now") }
        let link = self.link
        let body = try JSONEncoder().encode(["node": target])
        let answer = try Blocking.run {
            try await link.call(peer, .POST, "/node/v1/agents/\(name.rawValue)/move", headers: [("Content-Type", "application/json")],
                                body: .bytes(ByteBuffer(bytes: body)), timeout: Self.patience)
        }
        guard answer.status == 200 else { throw CoreError("node \(node) could not move \(name): \(answer.message)") }
        return try WireCoding.decoder().decode(MoveCommand.Reply.self, from: answer.body)
    }

    private func leave(_ name: AgentName, to peer: NodePeer) throws -> MoveCommand.Reply {
        let began = ContinuousClock.now
        lifecycle.processes?.stop(name)
        lifecycle.sockets.close(name)
        lifecycle.board.supervisor(name, state: .moving) // after the stop, which says stopped
        let out = spool(name, "out")
        defer { try? FileManager.default.removeItem(at: out) }
        var packed = AgentArchive.Packed(bytes: 0, sha256: "")
        do {
            let room = (NodeEndpoint.freeBytes(layout.root) ?? 0) - NodeEndpoint.reserve
            packed = try AgentArchive.pack(layout.agentDir(name), as: try packer(name), into: out, limit: min(NodeEndpoint.maxArchive, room))
            let (link, size, sha) = (self.link, packed.bytes, packed.sha256)
            let answer = try Blocking.run {
                try await link.call(peer, .PUT, "/node/v1/agents/\(name.rawValue)/arrival",
                                    headers: [(NodeHTTP.sha256.rawName, sha), ("Content-Type", "application/x-tar")],
                                    body: .stream(FileChunks(url: out), length: .known(size)), timeout: Self.patience)
            }
            guard answer.status == 200 else { throw CoreError("node \(peer.name) refused it: \(answer.message)") }
        } catch {
            // Called off here, or arrived there: whichever compare-and-set won says where it runs.
            switch try? store.callOffMove(name, to: peer.name) {
            case true?:
                lifecycle.board.supervisor(name, state: nil, ifStill: .moving)
                do { try lifecycle.bringUp(name) } catch { logger.error("could not bring \(name) back up after a failed move: \(error)") }
                throw CoreError("could not move \(name) to node \(peer.name): \(error); it runs here again")
            case false?:
                // Arrived, but it did not say it was done: this node's copy stays where it is, for the operator.
                lifecycle.processes?.stop(name)
                lifecycle.forget(name)
                configs.left(name)
                logger.error("the move of \(name) to node \(peer.name) arrived, though its answer did not (\(error)); its old directories stay in \(layout.agentDir(name).path)")
                return MoveCommand.Reply(name: name.rawValue, from: here, to: peer.name, bytes: packed.bytes, seconds: (ContinuousClock.now - began).seconds)
            case nil:
                // The database cannot say: the agent stays stopped until this node's reconciliation can.
                throw CoreError("could not move \(name) to node \(peer.name): \(error); the database cannot be asked whether it arrived, so it stays stopped until it can")
            }
        }
        // It runs there now: what is left here goes (the manager's config repo for it stays, on the git node).
        lifecycle.processes?.stop(name) // whatever may have started it meanwhile
        lifecycle.forget(name)
        configs.left(name)
        for sub in AgentArchive.members {
            do { try TreeRemoval.remove(sub, in: layout.agentDir(name)) } catch { logger.warning("\(name) moved, but its old \(sub) dir stays: \(error)") }
        }
        let seconds = (ContinuousClock.now - began).seconds
        logger.info("moved \(name) to node \(peer.name): \(packed.bytes) bytes in \(String(format: "%.1f", seconds)) s")
        lifecycle.notify(.moved, about: name, "\(name) moved from node \(here) to node \(peer.name).")
        return MoveCommand.Reply(name: name.rawValue, from: here, to: peer.name, bytes: packed.bytes, seconds: seconds)
    }

    /// Before a byte is read: a move of this live agent from the calling node to this one is under way.
    func checkArrival(_ name: AgentName, from caller: String) throws {
        guard let record = try store.agent(name), record.destroyedAt == nil else { throw NodeRefusal(message: "no live agent \(name)", status: .notFound) }
        guard let move = try store.moveUnderWay(name), move.from == caller, move.to == here else {
            throw NodeRefusal(message: "no move of \(name) from node \(caller) to node \(here) is under way")
        }
    }

    /// The checked archive in `spool` becomes `name`'s directories here, and `name` runs here.
    func unpackArrival(_ name: AgentName, from caller: String, spool: URL) throws {
        try lifecycle.busy.during(name) {
            try checkArrival(name, from: caller)
            let agents = layout.agentsDir
            let staging = Self.stagingPrefix + name.rawValue + "." + UUID().uuidString.prefix(8)
            var keep = false
            defer { if !keep { try? TreeRemoval.remove(staging, in: agents) } }
            guard mkdir(agents.appending(path: staging).path, 0o755) == 0 else { // root's; its uid only passes through
                throw CoreError("cannot make \(agents.appending(path: staging).path): \(String(cString: strerror(errno)))")
            }
            let uid = try arrivalUID()
            for sub in AgentArchive.members { try Ownership.makeDirectory(sub, in: agents.appending(path: staging), owner: uid) }
            try AgentArchive.unpack(spool, into: agents.appending(path: staging), as: uid.map { AgentArchive.Runner(uid: $0) })
            try configs.arriving(name) // its config, before the move counts as done
            let arrived: Bool
            do { arrived = try store.arrive(name, from: caller, uid: uid.map(Int.init)) } catch {
                // A bound that ran out may have let the statement commit: the database says which, or the copy stays.
                guard let placed = try? store.placements()[name.rawValue]?.node else {
                    keep = true
                    logger.critical("\(name)'s arrival cannot be confirmed; its directories are kept in \(agents.appending(path: staging).path)")
                    throw error
                }
                arrived = placed == here
            }
            guard arrived else {
                configs.left(name)
                throw NodeRefusal(message: "the move of \(name) from node \(caller) was called off: nothing changed")
            }
            // It is this node's now: its directories go in place of whatever an earlier stay left here.
            keep = true
            try AgentDirectories.create(name, in: layout)
            let from = open(agents.appending(path: staging).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let to = open(layout.agentDir(name).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            defer { if from >= 0 { close(from) }; if to >= 0 { close(to) } }
            for sub in AgentArchive.members {
                try TreeRemoval.remove(sub, in: layout.agentDir(name))
                guard from >= 0, to >= 0, renameat(from, sub, to, sub) == 0 else {
                    logger.critical("\(name) arrived but its \(sub) dir could not be put in place; it is in \(agents.appending(path: staging).path)")
                    throw CoreError("\(name) arrived, but its \(sub) dir is left in \(agents.appending(path: staging).path): \(String(cString: strerror(errno)))")
                }
            }
            keep = false
            try lifecycle.bringUp(name)
        }
        logger.info("\(name) arrived from node \(caller) and runs here")
    }
}

/// The other nodes' endpoints, certificates and token hashes, kept in memory: a request to the endpoint
/// is checked without touching the database, which a flood of forged requests could otherwise keep busy
/// enough to starve this node's heartbeat. Read again at most every ``refresh`` on a miss, and in the
/// background once ``stale``.
final class PeerBook: Sendable {
    let store: any HiveStore
    let logger: Logger
    private struct Book {
        var peers: [String: NodePeer] = [:]
        var readAt: ContinuousClock.Instant?
        var reading = false
        var lastRefusalLogged: ContinuousClock.Instant?
    }
    private let book = Mutex(Book())
    static let refresh: Duration = .seconds(2)
    static let stale: Duration = .seconds(30)

    init(store: any HiveStore, logger: Logger) { self.store = store; self.logger = logger }

    func peer(_ name: String) async -> NodePeer? {
        let now = ContinuousClock.now
        let (hit, read) = book.withLock { b -> (NodePeer?, Bool) in
            let age = b.readAt.map { now - $0 }
            let due = b.peers[name] == nil ? age.map { $0 >= Self.refresh } ?? true : age.map { $0 >= Self.stale } ?? true
            guard due, !b.reading else { return (b.peers[name], false) }
            b.reading = true
            return (b.peers[name], true)
        }
        guard read else { return hit }
        let peers = await onThread { [store] in try? store.peers() }
        return book.withLock { b in
            b.reading = false
            if let peers { b.peers = Dictionary(peers.map { ($0.name, $0) }, uniquingKeysWith: { $1 }); b.readAt = .now }
            return b.peers[name]
        }
    }

    /// Logs a refusal, at most once every 10 s (a flood must not flood the log too).
    func refused(_ text: @autoclosure () -> String) {
        let now = ContinuousClock.now
        guard book.withLock({ b -> Bool in
            guard b.lastRefusalLogged.map({ now - $0 >= .seconds(10) }) ?? true else { return false }
            b.lastRefusalLogged = now
            return true
        }) else { return }
        logger.warning("node endpoint: \(text()) (refusals are logged once per 10 s)")
    }
}

/// A file's bytes as the chunks of a streamed request body.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let url: URL

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        mutating func next() async throws -> ByteBuffer? {
            guard let handle, let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle?.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: try? FileHandle(forReadingFrom: url)) }
}
