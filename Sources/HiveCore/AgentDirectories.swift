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
    static func create(_ name: AgentName, in layout: HiveLayout) throws {
        for dir in [layout.stateDir(name), layout.harnessDir(name)] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
    }

    /// Removes `<root>/agents/<name>` and everything under it through descriptors (the agent and the
    /// manager write in it; see ``TreeRemoval``).
    static func remove(_ name: AgentName, in layout: HiveLayout) throws {
        try TreeRemoval.remove(name.rawValue, in: layout.agentsDir)
    }
}
