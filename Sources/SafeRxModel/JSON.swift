import Foundation

/// A JSON value: the in-memory form of a FHIR resource.
///
/// FHIR resources are open-ended documents; SafeRx keeps them as values of this type, validates the elements it knows
/// (see ``ResourceValidator``) and stores them encrypted. Objects keep no key order; encoding sorts keys so that the
/// same value always encodes to the same bytes.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public subscript(key: String) -> JSON? {
        get {
            if case .object(let o) = self { return o[key] }
            return nil
        }
        set {
            if case .object(var o) = self {
                o[key] = newValue
                self = .object(o)
            }
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int64? {
        if case .int(let n) = self { return n }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: [String: JSON]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// A short name of the JSON kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int, .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSON: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSON].self) {
            self = .array(a)
        } else if let o = try? c.decode([String: JSON].self) {
            self = .object(o)
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

extension JSON {
    /// Parses bytes as one JSON value, or throws ``FHIRError`` with a precise message.
    public static func parse(_ data: Data) throws(FHIRError) -> JSON {
        do {
            return try JSONReader.parse(data)
        } catch {
            throw FHIRError.invalid("Body is not valid JSON: \(error.message) at \(position(of: error.offset, in: data))")
        }
    }

    /// "line L, column C (byte B)": where a person with an editor looks, and where a program does.
    static func position(of offset: Int, in data: Data) -> String {
        var line = 1, column = 1
        for byte in data.prefix(max(0, offset)) {
            if byte == 0x0A { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
        }
        return "line \(line), column \(column) (byte \(offset))"
    }

    /// Encodes with sorted keys and no insignificant whitespace: the same value always yields the same bytes.
    public func encoded() -> Data {
        Data(encodedBytes())
    }

    /// ``encoded()`` as a byte array.
    public func encodedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        JSONWriter.write(self, into: &out)
        return out
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
