import ArgumentParser
import Foundation
import SafeRxModel
import SafeRxPharmacy
import SafeRxPolicy
import SafeRxStoreCore

/// `saferx import`: loads FHIR R4 Bundles as Synthea writes them.
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import FHIR R4 Bundles (Synthea output: transaction Bundles with urn:uuid references).",
        discussion: """
            Each file is one all-or-nothing write, audited with every patient it holds. Resource types SafeRx does not \
            model are counted and skipped; elements it does not model are dropped and counted; references to resources \
            not imported are dropped. Files holding only organizations and practitioners (Synthea's hospitalInformation* \
            and practitionerInformation*) are loaded first, so patients' references to them resolve.
            """)

    @OptionGroup var data: DataOptions
    @Option(help: "The pharmacy (tenant id) to import into.") var pharmacy: String = DemoPharmacy.tenant
    @Argument(help: "Bundle files (JSON).") var files: [String]

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("Name at least one Bundle file") }
    }

    func run() async throws {
        let service = try await data.openPharmacy()
        guard FHIRID.isValid(pharmacy) else { throw ValidationError("--pharmacy must be a pharmacy (tenant) id") }
        var bundles: [(String, JSON)] = []
        var failures: [String] = []
        for f in files {
            // A file that cannot be read, is empty or is not JSON is listed at the end; the others are imported.
            guard let bytes = FileManager.default.contents(atPath: f) else {
                failures.append("\(f): cannot be read")
                continue
            }
            guard !bytes.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) else {
                failures.append("\(f): the file is empty")
                continue
            }
            do {
                bundles.append((f, try JSON.parse(bytes)))
            } catch {
                failures.append("\(f): not JSON: \(error.diagnostics.replacingOccurrences(of: "Body is not valid JSON: ", with: ""))")
            }
        }
        // Reference data first; conditional references resolve across all files.
        func referenceOnly(_ b: JSON) -> Bool {
            (b["entry"]?.arrayValue ?? []).allSatisfy { ["Organization", "Practitioner", "Location", "PractitionerRole"].contains($0["resource"]?["resourceType"]?.stringValue ?? "") }
        }
        bundles.sort { referenceOnly($0.1) && !referenceOnly($1.1) }
        var known: [String: String] = [:]
        for (_, b) in bundles { known.merge(BundleImport.identifierKeys(in: b)) { a, _ in a } }
        let progress = ProgressBar(label: "importing")
        var total = BundleImport.Summary()
        for (n, (file, bundle)) in bundles.enumerated() {
            progress.update(n, bundles.count)
            do {
                let ctx = AccessContext.system(
                    reason: "saferx import \(URL(fileURLWithPath: file).lastPathComponent)", tenant: pharmacy, write: true, agent: "saferx import")
                total.merge(try await service.records.importBundle(ctx, bundle, known: known))
            } catch {
                failures.append("\(file): \(error.diagnostics)")
            }
        }
        progress.update(bundles.count, bundles.count)
        progress.finish()
        await service.checkpoint()
        for line in total.lines { say(line) }
        if !failures.isEmpty {
            for f in failures { say("not imported (nothing from this file was written): \(f)") }
            throw ExitCode(1)
        }
    }
}
