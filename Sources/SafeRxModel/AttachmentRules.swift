import Foundation

/// What SafeRx accepts as a file (message attachments, signed forms): at most ``maxBytes``, of an allowed type judged
/// by the bytes themselves, never by a name or a declared type alone. A declared type that disagrees with the
/// content is refused.
public enum AttachmentRules {
    /// The largest attachment: 5 MB.
    public static let maxBytes = 5 << 20
    /// Content types SafeRx accepts, as sniffed.
    public static let allowed = ["application/pdf", "image/png", "image/jpeg", "text/plain"]

    /// The content type the bytes are, or `nil` if none of ``allowed``. Plain text must be valid UTF-8 with no control
    /// characters other than tab, CR and LF (so an executable or an HTML file renamed `.txt` is not text).
    public static func sniff(_ data: Data) -> String? {
        if data.starts(with: Array("%PDF-".utf8)) { return "application/pdf" }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "image/png" }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        guard let text = String(data: data, encoding: .utf8) else { return nil }
        let controls = text.unicodeScalars.contains { $0.value < 0x20 && $0 != "\t" && $0 != "\n" && $0 != "\r" || $0.value == 0x7F }
        let lower = text.prefix(512).lowercased()
        if controls || lower.contains("<html") || lower.contains("<script") || lower.contains("<svg") || lower.contains("<!doctype") { return nil }
        return "text/plain"
    }

    /// Decodes and checks base64 content at `path`; returns the bytes and the sniffed type.
    @discardableResult
    public static func check(base64: String?, declared: String?, path: String, allowed: [String] = allowed) throws(FHIRError) -> (Data, String) {
        guard let base64, let data = Data(base64Encoded: base64), !data.isEmpty else {
            throw .invalid("\(path) must be non-empty base64", at: path)
        }
        guard data.count <= maxBytes else {
            throw .invalid("The file is \(data.count) bytes; the limit is \(maxBytes >> 20) MB", at: path)
        }
        guard let actual = sniff(data), allowed.contains(actual) else {
            throw .invalid("The file's content is not one of the accepted types (\(allowed.joined(separator: ", ")))", at: path)
        }
        if let declared {
            let media = declared.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard media == actual else {
                throw .invalid("The declared content type \(String(declared.prefix(40))) does not match the file's content (\(actual))", at: path)
            }
        }
        return (data, actual)
    }

    /// A Binary: its data within the limits and of the declared type.
    static func checkBinary(_ json: JSON) throws(FHIRError) {
        try check(base64: json["data"]?.stringValue, declared: json["contentType"]?.stringValue, path: "Binary.data")
    }

    /// A DocumentReference: every content attachment points at a Binary here (`url` = `Binary/{id}`) and carries no
    /// inline data (content goes through Binary, where it is checked).
    static func checkDocumentReference(_ json: JSON) throws(FHIRError) {
        let content = json["content"]?.arrayValue ?? []
        guard !content.isEmpty else { throw .invalid("DocumentReference.content needs at least one attachment", at: "DocumentReference.content") }
        for (i, c) in content.enumerated() {
            let path = "DocumentReference.content[\(i)].attachment"
            guard let a = c["attachment"], case .object(let o) = a else { throw .invalid("\(path) is required", at: path) }
            guard o["data"] == nil else { throw .invalid("\(path).data is not accepted: upload the file as a Binary and link it with url", at: "\(path).data") }
            guard let url = o["url"]?.stringValue, let ref = Reference(url), ref.type == .binary else {
                throw .invalid("\(path).url must be Binary/{id} of a Binary uploaded first", at: "\(path).url")
            }
            if let declared = o["contentType"]?.stringValue, !allowed.contains(declared) {
                throw .invalid("\(path).contentType \(String(declared.prefix(40))) is not an accepted type", at: "\(path).contentType")
            }
        }
    }
}
