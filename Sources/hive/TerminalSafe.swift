import Foundation
import HiveWire

/// Every line `hive` prints goes through this `print`, which shadows the standard one in this module, so
/// whatever an agent wrote reaches the operator's terminal as text (see ``VisibleText``).
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(VisibleText.clean(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}
