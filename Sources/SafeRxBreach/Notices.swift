import Foundation
import SafeRxModel

/// What every notice says about the incident (164.404(c)(1)(A), (D), (E)).
public struct IncidentFacts: Sendable, Codable {
    public var id: String
    public var pharmacy: String
    /// The first and last day data left, and the day of discovery.
    public var breachStart: String
    public var breachEnd: String
    public var discovered: String
    /// What happened, in plain language (set when the incident is declared).
    public var whatHappened: String
    /// What the pharmacy is doing to investigate, mitigate harm and protect against further breaches.
    public var whatWeAreDoing: String
    public var tollFree: String
    public var email: String
    public var postalAddress: String
    public var website: String

    public init(
        id: String, pharmacy: String, breachStart: String, breachEnd: String, discovered: String, whatHappened: String, whatWeAreDoing: String,
        tollFree: String, email: String, postalAddress: String, website: String
    ) {
        self.id = id
        self.pharmacy = pharmacy
        self.breachStart = breachStart
        self.breachEnd = breachEnd
        self.discovered = discovered
        self.whatHappened = whatHappened
        self.whatWeAreDoing = whatWeAreDoing
        self.tollFree = tollFree
        self.email = email
        self.postalAddress = postalAddress
        self.website = website
    }
}

/// One letter: to the individual, or to their caregiver or personal representative on their behalf.
public struct Letter: Sendable, Codable {
    public var letterID: String
    public var patientID: String
    public var recipientName: String
    /// Set when the letter goes to someone on the patient's behalf.
    public var onBehalfOf: String?
    public var addressLines: [String]
    public var city: String
    public var state: String
    public var postalCode: String
    public var elements: [DataElement]
    public var firstExposure: String
    public var lastExposure: String
    /// For a copy to a caregiver: the caregiver's own patient record (whose name and address the letter carries).
    public var recipientPatientID: String?

    public init(
        letterID: String, patientID: String, recipientName: String, onBehalfOf: String?, addressLines: [String], city: String, state: String,
        postalCode: String, elements: [DataElement], firstExposure: String, lastExposure: String, recipientPatientID: String? = nil
    ) {
        self.recipientPatientID = recipientPatientID
        self.letterID = letterID
        self.patientID = patientID
        self.recipientName = recipientName
        self.onBehalfOf = onBehalfOf
        self.addressLines = addressLines
        self.city = city
        self.state = state
        self.postalCode = postalCode
        self.elements = elements
        self.firstExposure = firstExposure
        self.lastExposure = lastExposure
    }
}

/// The notices of 164.404–164.408 as text, HTML, PDF, CSV and JSON.
public enum Notices {
    static func day(_ s: String) -> String { CivilDate(s)?.longForm ?? s }

    /// "on December 2, 2026" for one day, "between December 1, 2026 and December 2, 2026" for more.
    static func period(_ start: String, _ end: String) -> String {
        let a = day(start), b = day(end)
        return a == b ? "on \(a)" : "between \(a) and \(b)"
    }

    static func list(_ items: [String]) -> String {
        switch items.count {
        case 0: ""
        case 1: items[0]
        case 2: "\(items[0]) and \(items[1])"
        default: items.dropLast().joined(separator: ", ") + ", and " + items.last!
        }
    }

    /// The letter's paragraphs, each element of 164.404(c) in its own, in plain language.
    public static func paragraphs(_ l: Letter, _ f: IncidentFacts) -> [(heading: String, text: String)] {
        let who = l.onBehalfOf.map { "the person you care for, \($0)" } ?? "you"
        let whose = l.onBehalfOf == nil ? "your" : "their"
        let medical = l.elements.contains { $0.isMedical }
        var steps = [
            "Review the statements you receive from your health insurer and pharmacy, and tell us about any prescription or visit you do not recognize.",
            "Be wary of calls, e-mails or texts that mention \(whose) prescriptions and ask for information or payment; we will never ask for a password.",
        ]
        if l.elements.contains(.ssn) || l.elements.contains(.birthDate) {
            steps.append("Consider placing a free fraud alert or security freeze with the credit bureaus (Equifax, Experian, TransUnion), and check your credit reports at annualcreditreport.com.")
        }
        if l.elements.contains(.contact) { steps.append("Expect that scammers may use \(whose) phone number or e-mail address, and do not open links in unexpected messages.") }
        return [
            ("What happened",
             "\(f.whatHappened) The information was accessed \(period(l.firstExposure, l.lastExposure)). We discovered this on \(day(f.discovered))."),
            ("What information was involved",
             (l.onBehalfOf == nil ? "Your information that was involved: " : "The information of \(who) that was involved: ")
                + "\(list(l.elements.map(\.label))). "
                + (medical ? "" : "No medication or other health information of \(l.onBehalfOf == nil ? "yours" : "theirs") was involved. ")
                + (l.elements.contains(.ssn) ? "No bank or card numbers were involved." : "No Social Security number, bank or card number was involved.")),
            ("What you can do", steps.joined(separator: " ")),
            ("What we are doing", f.whatWeAreDoing),
            ("For more information",
             "Call us toll-free at \(f.tollFree), write to \(f.email), or write to \(f.postalAddress). Information about this incident is also at \(f.website). Please mention reference \(l.letterID)."),
        ]
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    public static func letterHTML(_ l: Letter, _ f: IncidentFacts, date: String) -> String {
        var h = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Notice of a data breach</title></head><body>\n"
        h += "<p>\(escape(f.pharmacy))<br>\(escape(f.postalAddress))</p>\n<p>\(escape(day(date)))</p>\n<address>"
        h += ([l.recipientName] + l.addressLines + ["\(l.city), \(l.state) \(l.postalCode)"]).map(escape).joined(separator: "<br>")
        h += "</address>\n<h1>Notice of a data breach</h1>\n<p>Reference \(escape(l.letterID))</p>\n<p>Dear \(escape(l.recipientName)),</p>\n"
        if let on = l.onBehalfOf { h += "<p>We are writing to you as the caregiver or personal representative on record for \(escape(on)).</p>\n" }
        h += "<p>We are writing to tell you about an incident that involved \(l.onBehalfOf == nil ? "your" : "their") information at \(escape(f.pharmacy)).</p>\n"
        for p in paragraphs(l, f) { h += "<h2>\(escape(p.heading))</h2>\n<p>\(escape(p.text))</p>\n" }
        h += "<p>We are sorry this happened.</p>\n<p>\(escape(f.pharmacy))</p>\n</body></html>\n"
        return h
    }

    public static func letterText(_ l: Letter, _ f: IncidentFacts, date: String) -> [String] {
        var lines = [f.pharmacy, f.postalAddress, "", day(date), ""] + [l.recipientName] + l.addressLines + ["\(l.city), \(l.state) \(l.postalCode)", ""]
        lines += ["NOTICE OF A DATA BREACH", "Reference \(l.letterID)", "", "Dear \(l.recipientName),", ""]
        if let on = l.onBehalfOf { lines += ["We are writing to you as the caregiver or personal representative on record for \(on).", ""] }
        lines += ["We are writing to tell you about an incident that involved \(l.onBehalfOf == nil ? "your" : "their") information at \(f.pharmacy).", ""]
        for p in paragraphs(l, f) { lines += [p.heading.uppercased(), p.text, ""] }
        lines += ["We are sorry this happened.", "", f.pharmacy]
        return lines
    }

    public static func letterPDF(_ l: Letter, _ f: IncidentFacts, date: String) -> Data {
        MinimalPDF.document(lines: letterText(l, f, date: date))
    }

    /// The print vendor's mail-merge file: one row per letter, the per-person elements as text.
    public static let mailMergeHeader = [
        "letter_id", "patient_id", "recipient_name", "on_behalf_of", "address_line1", "address_line2", "city", "state", "postal_code",
        "information_involved", "first_exposure", "last_exposure",
    ]

    public static func mailMergeRow(_ l: Letter) -> String {
        var out: [UInt8] = []
        appendMailMergeRow(l, to: &out)
        out.removeLast(2)
        return String(decoding: out, as: UTF8.self)
    }

    /// The plain-language list of `elements` as the mail merge's `information_involved` field.
    public static func informationInvolved(_ elements: [DataElement]) -> String { list(elements.map(\.label)) }

    /// Appends one mail-merge row (``mailMergeHeader``'s columns, CRLF-terminated) as UTF-8. `involved` is
    /// ``informationInvolved(_:)`` of the letter's elements when the caller has it already (most letters of an
    /// incident share a handful of element lists).
    public static func appendMailMergeRow(_ l: Letter, involved: String? = nil, to out: inout [UInt8]) {
        let comma = UInt8(ascii: ",")
        for (i, f) in [l.letterID, l.patientID, l.recipientName, l.onBehalfOf ?? "", l.addressLines.first ?? "",
                       l.addressLines.dropFirst().joined(separator: " "), l.city, l.state, l.postalCode,
                       involved ?? informationInvolved(l.elements), l.firstExposure, l.lastExposure].enumerated() {
            if i > 0 { out.append(comma) }
            CSV.append(field: f, to: &out)
        }
        out.append(contentsOf: [UInt8(ascii: "\r"), UInt8(ascii: "\n")])
    }

    /// 164.404(d)(2): the website or media notice for those who cannot be reached, with the toll-free number.
    public static func substituteNotice(_ f: IncidentFacts, unreachable: Int, elements: [DataElement]) -> String {
        """
        Notice of a data breach at \(f.pharmacy)

        \(f.whatHappened) The information was accessed \(period(f.breachStart, f.breachEnd)); we discovered it on \(day(f.discovered)).

        We could not reach \(unreachable) of the people involved by mail. If you are or were a patient of \(f.pharmacy), call \(f.tollFree) (toll-free, open for at least 90 days from the posting of this notice) to learn whether your information was involved.

        The information involved, depending on the person: \(list(elements.map(\.label))).

        What you can do: review your insurer's and pharmacy's statements for prescriptions you do not recognize; be wary of calls or messages that mention your prescriptions.

        What we are doing: \(f.whatWeAreDoing)

        Contact: \(f.tollFree), \(f.email), \(f.postalAddress), \(f.website). This notice stays posted on \(f.website) for at least 90 days.
        """
    }

    /// 164.406: the notice to prominent media outlets serving a state.
    public static func mediaNotice(_ f: IncidentFacts, state: String, residents: Int, elements: [DataElement]) -> String {
        """
        FOR IMMEDIATE RELEASE — \(f.pharmacy) notifies patients of a data breach

        \(f.pharmacy) is notifying \(residents) residents of \(state) whose information was involved in a data breach. \(f.whatHappened) The information was accessed \(period(f.breachStart, f.breachEnd)) and discovered on \(day(f.discovered)).

        Information involved, depending on the person: \(list(elements.map(\.label))).

        \(f.whatWeAreDoing)

        Affected individuals are being notified by mail. Anyone with questions may call \(f.tollFree) (toll-free), write to \(f.email), or visit \(f.website).
        """
    }

    /// A state regulator's (attorney general's) notice.
    public static func regulatorNotice(_ f: IncidentFacts, state: String, regulator: String, residents: Int, elements: [DataElement], letterDate: String) -> String {
        """
        To: \(regulator), \(state)
        From: \(f.pharmacy), \(f.postalAddress)
        Re: Notice of a data breach (reference \(f.id))

        \(f.pharmacy) reports a breach of the security of personal information involving \(residents) residents of \(state).

        What happened: \(f.whatHappened)
        Dates: accessed \(period(f.breachStart, f.breachEnd)); discovered \(day(f.discovered)).
        Information involved: \(list(elements.map(\.label))).
        Notice to residents: by first-class mail, planned for \(day(letterDate)); a copy of the letter is attached.
        What we are doing: \(f.whatWeAreDoing)
        Contact: \(f.tollFree), \(f.email).
        """
    }

    /// The fields of the OCR breach portal form (https://ocrportal.hhs.gov/ocr/breach), as JSON.
    public static func hhsReport(
        _ f: IncidentFacts, affected: Int, elements: [DataElement], businessAssociate: Bool, typeOfBreach: String, location: String,
        safeguards: [String], actions: [String], individualNotice: String?, substituteNotice: Bool, mediaNotice: Bool, stateAGs: [String]
    ) -> JSON {
        .object([
            "reportType": .string(affected >= 500 ? "Breach affecting 500 or more individuals" : "Breach affecting fewer than 500 individuals (annual log)"),
            "coveredEntity": .object(["name": .string(f.pharmacy), "type": "Health Care Provider", "address": .string(f.postalAddress), "contactPhone": .string(f.tollFree), "contactEmail": .string(f.email)]),
            "businessAssociateInvolved": .bool(businessAssociate),
            "breachStartDate": .string(f.breachStart), "breachEndDate": .string(f.breachEnd), "discoveryDate": .string(f.discovered),
            "approximateNumberOfIndividualsAffected": .int(Int64(affected)),
            "typeOfBreach": .string(typeOfBreach), "locationOfBreachedInformation": .string(location),
            "typeOfProtectedHealthInformationInvolved": .array(Array(Set(elements.map(\.hhsCategory))).sorted().map { .string($0) }),
            "protectedHealthInformationDetail": .array(elements.map { .string($0.label) }),
            "briefDescription": .string(f.whatHappened),
            "safeguardsInPlacePriorToBreach": .array(safeguards.map { .string($0) }),
            "actionsTakenInResponse": .array(actions.map { .string($0) }),
            "individualNoticeProvidedOn": individualNotice.map { .string($0) } ?? .null,
            "substituteNoticeRequired": .bool(substituteNotice), "mediaNoticeRequired": .bool(mediaNotice),
            "stateAttorneysGeneralNotified": .array(stateAGs.map { .string($0) }),
        ])
    }

    /// The portal fields, for a person to read before pasting them in.
    public static func hhsSummary(_ report: JSON) -> String {
        func s(_ k: String) -> String {
            switch report[k] {
            case .string(let v)?: v
            case .int(let n)?: String(n)
            case .bool(let b)?: b ? "yes" : "no"
            case .array(let a)?: a.compactMap(\.stringValue).joined(separator: "; ")
            case .null?, nil: "not yet"
            default: ""
            }
        }
        return [
            "HHS breach report (OCR portal fields)", "Report: \(s("reportType"))", "Covered entity: \(report["coveredEntity"]?["name"]?.stringValue ?? "")",
            "Business associate involved: \(s("businessAssociateInvolved"))", "Breach dates: \(s("breachStartDate")) to \(s("breachEndDate"))",
            "Discovered: \(s("discoveryDate"))", "Individuals affected: \(s("approximateNumberOfIndividualsAffected"))", "Type of breach: \(s("typeOfBreach"))",
            "Location of breached information: \(s("locationOfBreachedInformation"))", "Type of PHI: \(s("typeOfProtectedHealthInformationInvolved"))",
            "PHI detail: \(s("protectedHealthInformationDetail"))", "Description: \(s("briefDescription"))",
            "Safeguards in place before: \(s("safeguardsInPlacePriorToBreach"))", "Actions taken: \(s("actionsTakenInResponse"))",
            "Individual notice provided on: \(s("individualNoticeProvidedOn"))", "Substitute notice: \(s("substituteNoticeRequired"))",
            "Media notice: \(s("mediaNoticeRequired"))", "State attorneys general: \(s("stateAttorneysGeneralNotified").isEmpty ? "none required" : s("stateAttorneysGeneralNotified"))",
        ].joined(separator: "\n")
    }
}

/// A PDF of plain text pages (Helvetica, Letter size), written without a PDF library.
public enum MinimalPDF {
    /// Wraps at ~92 characters and paginates at 54 lines.
    public static func document(lines: [String]) -> Data {
        var wrapped: [String] = []
        for line in lines {
            var rest = Substring(ascii(line))
            if rest.isEmpty { wrapped.append("") }
            while !rest.isEmpty {
                if rest.count <= 92 {
                    wrapped.append(String(rest))
                    break
                }
                let cut = rest.prefix(92).lastIndex(of: " ") ?? rest.index(rest.startIndex, offsetBy: 92)
                wrapped.append(String(rest[..<cut]))
                rest = rest[cut...].drop { $0 == " " }
            }
        }
        let pages = stride(from: 0, to: max(wrapped.count, 1), by: 54).map { Array(wrapped[$0..<min($0 + 54, wrapped.count)]) }
        var objects: [String] = []
        // 1 catalog, 2 pages, 3 font, then page + content per page.
        let kids = pages.indices.map { "\(4 + $0 * 2) 0 R" }.joined(separator: " ")
        objects.append("<< /Type /Catalog /Pages 2 0 R >>")
        objects.append("<< /Type /Pages /Kids [\(kids)] /Count \(pages.count) >>")
        objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
        for (i, page) in pages.enumerated() {
            var stream = "BT /F1 11 Tf 14 TL 60 740 Td\n"
            for l in page { stream += "(\(escape(l))) Tj T*\n" }
            stream += "ET"
            objects.append("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents \(5 + i * 2) 0 R >>")
            objects.append("<< /Length \(stream.utf8.count) >>\nstream\n\(stream)\nendstream")
        }
        var out = "%PDF-1.4\n"
        var offsets: [Int] = []
        for (i, o) in objects.enumerated() {
            offsets.append(out.utf8.count)
            out += "\(i + 1) 0 obj\n\(o)\nendobj\n"
        }
        let xref = out.utf8.count
        out += "xref\n0 \(objects.count + 1)\n0000000000 65535 f \n"
        for o in offsets { out += String(format: "%010d 00000 n \n", o) }
        out += "trailer\n<< /Size \(objects.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        return Data(out.utf8)
    }

    static func ascii(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "“", "”": out.append("\"")
            case "‘", "’": out.append("'")
            case "–", "—": out.append("-")
            case "→": out.append("->")
            case "§": out.append("S.")
            default: out.append(c.isASCII ? c : "?")
            }
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "(", with: "\\(").replacingOccurrences(of: ")", with: "\\)")
    }
}
