import Foundation
import HiveBroker
import HiveHost
import HiveWire
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Shared request plumbing: decode, run, and turn every failure into an error line.
enum Respond {
    static func to<Request>(_ line: Data, table: CommandTable<Request>, logger: Logger,
                            _ body: (Request) throws -> Data) -> Data {
        let request: Request
        do { request = try table.decode(line) } catch { return ResponseLine.failure(error.message) }
        do {
            return try body(request)
        } catch let e as BrokerError {
            if case .storage = e { logger.error("\(e)") }
            return ResponseLine.failure(e.description)
        } catch let e as NameError {
            return ResponseLine.failure(e.description)
        } catch let e as CoreError {
            return ResponseLine.failure(e.description)
        } catch let e as LayoutError {
            return ResponseLine.failure(e.description)
        } catch let e as RequestError {
            return ResponseLine.failure(e.message)
        } catch {
            logger.error("request failed: \(error)")
            return ResponseLine.failure("internal error; the core's log has the details")
        }
    }
}
