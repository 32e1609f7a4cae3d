import AsyncHTTPClient
import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// `hive move NAME --node N`, both ends (docs/multi-host.md, "Moving an agent").
///
/// On the node it leaves: the cage stops and the socket closes (messages wait in the database), the state
/// and harness directories are packed (``AgentArchive``) and sent to the other node's endpoint with their
/// SHA-256. On the node it reaches: the archive is checked, unpacked beside the agent's directory, swapped
/// in, and only then does the placement move, in one statement that also checks the agent is still where
/// the caller said; then the agent starts there. Until that statement, the old node's copy is whole and a
/// failure anywhere brings the agent back up where it was. Its inbox never moves.
struct AgentMoves: Sendable {
    let store: any HiveStore
    let lifecycle: Lifecycle
    let identity: NodeIdentity
    /// Who tar runs as for an agent on this node (nil: core's own uid, as its cages).
    let runner: @Sendable (AgentName) throws -> AgentArchive.Runner?
    let logger: Logger
    var layout: HiveLayout { lifecycle.layout }
    var here: String { store.nodeName ?? "" }
    var link: NodeLink { NodeLink(here: here, identity: identity) }
    /// How long one move may take end to end (a large state dir on a slow link).
    static let patience: Duration = .seconds(1800)

    func spool(_ name: AgentName, _ way: String) -> URL {
        let dir = layout.nodeDir.appending(path: "spool")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Unique: a leftover of an interrupted move is never mistaken for this one's.
        return dir.appending(path: "\(name.rawValue).\(way).\(UUID().uuidString.prefix(8)).tar")
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
        return try lifecycle.busy.during(name) { try leave(name, to: peer) }
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
        lifecycle.board.supervisor(name, state: .moving)
        lifecycle.processes?.stop(name)
        lifecycle.sockets.close(name)
        let out = spool(name, "out")
        defer { try? FileManager.default.removeItem(at: out) }
        var packed = AgentArchive.Packed(bytes: 0, sha256: "")
        do {
            packed = try AgentArchive.pack(layout.agentDir(name), as: try runner(name), into: out)
            let (link, size, sha) = (self.link, packed.bytes, packed.sha256)
            let answer = try Blocking.run {
                try await link.call(peer, .PUT, "/node/v1/agents/\(name.rawValue)/arrival",
                                    headers: [(NodeEndpoint.sha256Header.rawName, sha), ("Content-Type", "application/x-tar")],
                                    body: .stream(FileChunks(url: out), length: .known(size)), timeout: Self.patience)
            }
            guard answer.status == 200 else { throw CoreError("node \(peer.name) refused it: \(answer.message)") }
        } catch {
            // The answer may be what was lost: the placement says whether it landed.
            if (try? store.placements()[name.rawValue]?.node) != peer.name {
                lifecycle.board.supervisor(name, state: nil, ifStill: .moving)
                do { try lifecycle.bringUp(name) } catch { logger.error("could not bring \(name) back up after a failed move: \(error)") }
                throw CoreError("could not move \(name) to node \(peer.name): \(error); it runs here again")
            }
        }
        // It runs there now: what is left here goes (the manager's config repo for it stays, on the git node).
        lifecycle.forget(name)
        for sub in AgentArchive.members {
            do { try TreeRemoval.remove(sub, in: layout.agentDir(name)) } catch { logger.warning("\(name) moved, but its old \(sub) dir stays: \(error)") }
        }
        let seconds = (ContinuousClock.now - began).seconds
        logger.info("moved \(name) to node \(peer.name): \(packed.bytes) bytes in \(String(format: "%.1f", seconds)) s")
        lifecycle.notify(.moved, about: name, "\(name) moved from node \(here) to node \(peer.name).")
        return MoveCommand.Reply(name: name.rawValue, from: here, to: peer.name, bytes: packed.bytes, seconds: seconds)
    }

    /// Before a byte is read: the agent is alive and placed on the calling node.
    func checkArrival(_ name: AgentName, from caller: String) throws {
        guard let record = try store.agent(name), record.destroyedAt == nil else { throw NodeRefusal(message: "no live agent \(name)", status: .notFound) }
        guard try store.placements()[name.rawValue]?.node == caller else {
            throw NodeRefusal(message: "\(name) is not placed on node \(caller)")
        }
    }

    /// The checked archive in `spool` becomes `name`'s directories here, and `name` runs here.
    func unpackArrival(_ name: AgentName, from caller: String, spool: URL) throws {
        try checkArrival(name, from: caller)
        try lifecycle.busy.during(name) {
            let staging = ".arriving-\(name.rawValue)" // a leading dot: never an agent's name
            let agents = layout.agentsDir
            try TreeRemoval.remove(staging, in: agents)
            defer { try? TreeRemoval.remove(staging, in: agents) }
            guard mkdir(agents.appending(path: staging).path, 0o755) == 0 else {
                throw CoreError("cannot make \(agents.appending(path: staging).path): \(String(cString: strerror(errno)))")
            }
            let runner = try runner(name)
            for sub in AgentArchive.members {
                try Ownership.makeDirectory(sub, in: agents.appending(path: staging), owner: runner?.uid)
            }
            try AgentArchive.unpack(spool, into: agents.appending(path: staging), as: runner)
            // In place of whatever an earlier stay left here.
            try AgentDirectories.create(name, in: layout)
            let from = open(agents.appending(path: staging).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let to = open(layout.agentDir(name).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            defer { if from >= 0 { close(from) }; if to >= 0 { close(to) } }
            guard from >= 0, to >= 0 else { throw CoreError("cannot open the directories of \(name): \(String(cString: strerror(errno)))") }
            for sub in AgentArchive.members {
                try TreeRemoval.remove(sub, in: layout.agentDir(name))
                guard renameat(from, sub, to, sub) == 0 else { throw CoreError("cannot put \(name)'s \(sub) dir in place: \(String(cString: strerror(errno)))") }
            }
            guard try store.arrive(name, from: caller) else {
                for sub in AgentArchive.members { try? TreeRemoval.remove(sub, in: layout.agentDir(name)) }
                throw NodeRefusal(message: "\(name) left node \(caller) meanwhile (moved or destroyed): nothing changed")
            }
            try lifecycle.bringUp(name)
        }
        logger.info("\(name) arrived from node \(caller) and runs here")
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
