import Foundation
@testable import HiveCore
import Testing

@Suite("Line framing")
struct LineFramerTests {
    func lines(_ items: [Framed]) -> [String] {
        items.map {
            switch $0 {
            case .line(let d): return String(decoding: d, as: UTF8.self)
            case .overlong(let n): return "<overlong \(n)>"
            }
        }
    }

    @Test("lines split across reads are joined; CRLF and blank lines are handled")
    func splitting() {
        var f = LineFramer(maxLine: 100)
        #expect(lines(f.push(ArraySlice("{\"a\":".utf8))).isEmpty)
        #expect(lines(f.push(ArraySlice("1}\r\n\n  \n{\"b\":2}\n{\"c\"".utf8))) == ["{\"a\":1}", "{\"b\":2}"])
        #expect(lines(f.finish().map { [$0] } ?? []) == ["{\"c\""], "a last line without newline still counts")
    }

    @Test("an over-long line is reported once and the next line is read normally")
    func overlong() {
        var f = LineFramer(maxLine: 10)
        #expect(lines(f.push(ArraySlice(String(repeating: "x", count: 25).utf8))).isEmpty)
        #expect(lines(f.push(ArraySlice("yyy\nok\n".utf8))) == ["<overlong 28>", "ok"])
        #expect(lines(f.push(ArraySlice("0123456789A\nfine\n".utf8))) == ["<overlong 11>", "fine"])
    }
}
