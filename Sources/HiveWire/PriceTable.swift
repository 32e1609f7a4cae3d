import Foundation

/// What model tokens cost, in USD per million, with the date and source of the numbers. The hive's own
/// table is below; the operator's `<root>/prices.json` (the same shape) replaces it. Cache writes and
/// reads are priced from the input price: a 5-minute write 1.25x, a 1-hour write 2x, a read 0.1x.
public struct PriceTable: Codable, Sendable, Equatable {
    public struct Price: Codable, Sendable, Equatable {
        public var input: Double
        public var output: Double
        public init(input: Double, output: Double) { self.input = input; self.output = output }
    }

    /// When the numbers were taken, and from where.
    public var date: String
    public var source: String
    /// By model id prefix (`claude-opus-4-1` prices `claude-opus-4-1-20250805`); the longest match wins.
    public var models: [String: Price]
    /// By family (`opus`, `sonnet`, `haiku`), for ids the table does not know: priced, and flagged.
    public var families: [String: Price]

    public static let fileName = "prices.json"

    /// The hive's table. Anthropic's public list prices as we knew them; the operator overrides them
    /// with `<root>/prices.json` when they change or a contract differs.
    public static let builtIn = PriceTable(
        date: "2025-11-24",
        source: "https://www.anthropic.com/pricing (list prices per million tokens, standard context)",
        models: [
            "claude-opus-4-5": .init(input: 5, output: 25),
            "claude-opus-4-1": .init(input: 15, output: 75),
            "claude-opus-4": .init(input: 15, output: 75),
            "claude-sonnet-4-5": .init(input: 3, output: 15),
            "claude-sonnet-4": .init(input: 3, output: 15),
            "claude-3-7-sonnet": .init(input: 3, output: 15),
            "claude-haiku-4-5": .init(input: 1, output: 5),
            "claude-3-5-haiku": .init(input: 0.8, output: 4),
        ],
        families: ["opus": .init(input: 5, output: 25), "sonnet": .init(input: 3, output: 15), "haiku": .init(input: 1, output: 5)])

    /// The operator's table in `root`, else the hive's. A file that does not parse is named, not ignored.
    public static func load(root: URL) throws -> PriceTable {
        let file = root.appending(path: fileName)
        guard let data = try? Data(contentsOf: file) else { return builtIn }
        do { return try JSONDecoder().decode(PriceTable.self, from: data) } catch {
            throw RequestError("\(file.path) is not a price table (date, source, models, families): \(error)")
        }
    }

    /// The price of `model`, and whether it was only its family's (an id the table does not know).
    public func price(_ model: String) -> (Price, byFamily: Bool)? {
        let id = model.lowercased().split(separator: "[").first.map(String.init) ?? ""
        if let key = models.keys.filter({ id.hasPrefix($0) }).max(by: { $0.count < $1.count }), let p = models[key] { return (p, false) }
        if let family = families.keys.sorted().first(where: { id.contains($0) }), let p = families[family] { return (p, true) }
        return nil
    }

    /// A bounded name for `model` (for metrics and the per-model totals): the table's key that prices it
    /// (`claude-sonnet-4-5`), else its family (`sonnet`), else `other`. However many ids an agent makes
    /// up, they come to the table's keys and three more.
    public func label(_ model: String) -> String {
        let id = model.lowercased().split(separator: "[").first.map(String.init) ?? ""
        if let key = models.keys.filter({ id.hasPrefix($0) }).max(by: { $0.count < $1.count }) { return key }
        return families.keys.sorted().first { id.contains($0) } ?? "other"
    }

    /// What `usage` of `model` cost in USD; nil when not even its family is known.
    public func cost(_ model: String, _ usage: TokenCount) -> (usd: Double, byFamily: Bool)? {
        guard let (p, byFamily) = price(model) else { return nil }
        let inputs = Double(usage.input) + 1.25 * Double(usage.cacheWriteShort) + 2 * Double(usage.cacheWriteLong) + 0.1 * Double(usage.cacheRead)
        return ((inputs * p.input + Double(usage.output) * p.output) / 1_000_000, byFamily)
    }
}
