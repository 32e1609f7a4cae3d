/// Coalesces concurrent writes into shared transactions ("group commit").
///
/// With `synchronous = FULL` every commit costs one fsync of the WAL. Senders that arrive while a
/// commit is in progress queue up and share the next one, so N concurrent senders pay for far fewer
/// than N fsyncs, and each caller still returns only after its own rows are durable.
actor GroupCommit<Job: Sendable, Result: Sendable> {
    typealias Process = @Sendable ([Job]) async throws -> [Result]

    private var queue: [(Job, CheckedContinuation<Result, any Error>)] = []
    private var draining = false
    private let process: Process
    private let maxBatch: Int

    /// `process` runs one batch in one transaction and returns one result per job, in order.
    init(maxBatch: Int = 256, process: @escaping Process) {
        self.process = process
        self.maxBatch = maxBatch
    }

    /// Queues `job` and returns its result once the batch that carried it has committed.
    func submit(_ job: Job) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.append((job, continuation))
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !queue.isEmpty {
            let batch = Array(queue.prefix(maxBatch))
            queue.removeFirst(batch.count)
            do {
                let results = try await process(batch.map(\.0))
                for (entry, result) in zip(batch, results) { entry.1.resume(returning: result) }
            } catch {
                for entry in batch { entry.1.resume(throwing: error) }
            }
        }
        draining = false
    }
}
