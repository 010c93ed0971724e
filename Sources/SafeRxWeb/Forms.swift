import Foundation
import SafeRxModel

/// A submitted HTML form: `application/x-www-form-urlencoded` or `multipart/form-data` (file uploads).
public struct FormData: Sendable {
    public struct File: Sendable {
        public var field: String
        public var filename: String
        /// What the browser claims; SafeRx judges the type from the bytes (``AttachmentRules``).
        public var declaredType: String
        public var data: Data
    }

    public var fields: [String: String] = [:]
    public var files: [File] = []

    public subscript(_ name: String) -> String? { fields[name] }

    /// The trimmed value of a field, or `nil` when absent or blank.
    public func value(_ name: String) -> String? {
        guard let v = fields[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty else { return nil }
        return v
    }

    public init(fields: [String: String] = [:], files: [File] = []) {
        self.fields = fields
        self.files = files
    }

    /// Parses a body by its content type. Unknown types, repeated fields and malformed encodings are errors.
    public static func parse(_ body: Data, contentType: String?) throws(FHIRError) -> FormData {
        let type = (contentType ?? "").lowercased()
        if type.hasPrefix("application/x-www-form-urlencoded") { return try urlEncoded(body) }
        if type.hasPrefix("multipart/form-data") {
            guard let b = contentType?.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { $0.lowercased().hasPrefix("boundary=") })?.dropFirst(9)
            else { throw .invalid("The form has no multipart boundary") }
            return try multipart(body, boundary: String(b).trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
        }
        throw .invalid("Forms must be sent as application/x-www-form-urlencoded or multipart/form-data")
    }

    public static func urlEncoded(_ body: Data) throws(FHIRError) -> FormData {
        var form = FormData()
        guard !body.isEmpty else { return form }
        guard let text = String(data: body, encoding: .utf8) else { throw .invalid("The form is not UTF-8") }
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]), let value = decode(parts.count > 1 ? parts[1] : "") else {
                throw .invalid("The form has a malformed field")
            }
            guard form.fields[name] == nil else { throw .invalid("The form repeats the field '\(String(name.prefix(30)))'") }
            form.fields[name] = value
        }
        return form
    }

    static func decode(_ s: Substring) -> String? {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// A small multipart/form-data reader (RFC 7578): parts with a `name`, files with a `filename`.
    public static func multipart(_ body: Data, boundary: String) throws(FHIRError) -> FormData {
        guard !boundary.isEmpty, boundary.utf8.count <= 70 else { throw .invalid("The multipart boundary is invalid") }
        let delimiter = Data("--\(boundary)".utf8)
        let crlf = Data("\r\n".utf8)
        var form = FormData()
        guard var cursor = body.range(of: delimiter)?.upperBound else { throw .invalid("The multipart form has no parts") }
        while true {
            // After a delimiter: "--" ends the form, CRLF starts a part.
            if body[cursor...].starts(with: Data("--".utf8)) { break }
            guard body[cursor...].starts(with: crlf) else { throw .invalid("The multipart form is malformed") }
            cursor += 2
            guard let headerEnd = body.range(of: Data("\r\n\r\n".utf8), in: cursor..<body.endIndex) else {
                throw .invalid("A multipart part has no header end")
            }
            guard let headerText = String(data: body[cursor..<headerEnd.lowerBound], encoding: .utf8) else {
                throw .invalid("A multipart header is not UTF-8")
            }
            guard let next = body.range(of: crlf + delimiter, in: headerEnd.upperBound..<body.endIndex) else {
                throw .invalid("The multipart form is truncated")
            }
            let content = body[headerEnd.upperBound..<next.lowerBound]
            var name: String?, filename: String?, type = "application/octet-stream"
            for line in headerText.components(separatedBy: "\r\n") {
                let lower = line.lowercased()
                if lower.hasPrefix("content-disposition:") {
                    name = parameter("name", in: line)
                    filename = parameter("filename", in: line)
                } else if lower.hasPrefix("content-type:") {
                    type = line.dropFirst("content-type:".count).trimmingCharacters(in: .whitespaces)
                }
            }
            guard let name else { throw .invalid("A multipart part has no name") }
            if let filename {
                if !content.isEmpty || !filename.isEmpty {
                    form.files.append(File(field: name, filename: filename, declaredType: type, data: Data(content)))
                }
            } else {
                guard form.fields[name] == nil else { throw .invalid("The form repeats the field '\(String(name.prefix(30)))'") }
                guard let value = String(data: content, encoding: .utf8) else { throw .invalid("The field '\(String(name.prefix(30)))' is not UTF-8") }
                form.fields[name] = value
            }
            cursor = next.upperBound
        }
        return form
    }

    static func parameter(_ key: String, in header: String) -> String? {
        for part in header.split(separator: ";").dropFirst() {
            let kv = part.trimmingCharacters(in: .whitespaces)
            guard kv.lowercased().hasPrefix("\(key)=") else { continue }
            var v = kv.dropFirst(key.count + 1)
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = v.dropFirst().dropLast() }
            return String(v)
        }
        return nil
    }
}
