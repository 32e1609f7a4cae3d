import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Creates and removes an agent's directories under the hive root.
enum AgentDirectories {
    /// `<root>/agents/<n>` (root's) with its `state` and `harness`, each made or found through a
    /// descriptor: a link in their place is refused, never followed (see ``Ownership/makeDirectory``).
    /// Idempotent; ownership is the cage's to hand over.
    static func create(_ name: AgentName, in layout: HiveLayout) throws {
        try FileManager.default.createDirectory(at: layout.agentsDir, withIntermediateDirectories: true) // under the root: root's
        try Ownership.makeDirectory(name.rawValue, in: layout.agentsDir, owner: nil)
        for sub in [layout.stateDir(name), layout.harnessDir(name)] {
            try Ownership.makeDirectory(sub.lastPathComponent, in: layout.agentDir(name), owner: nil)
        }
    }

    /// Removes `<root>/agents/<name>` and everything under it through descriptors (the agent and the
    /// manager write in it; see ``TreeRemoval``).
    static func remove(_ name: AgentName, in layout: HiveLayout) throws {
        try TreeRemoval.remove(name.rawValue, in: layout.agentsDir)
    }
}
