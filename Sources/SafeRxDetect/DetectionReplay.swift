/// What the detector found over a stretch of the audit log replayed with some rules (`saferx detect replay`, the
/// detection benchmark). Nothing of a replay is stored.
public struct DetectionReplay: Sendable {
    public var records: Int
    public var findings: [Finding]
    /// Wall time, reading and decoding included.
    public var seconds: Double
    /// Time spent in the detector alone.
    public var detectorSeconds: Double
    /// Per rule, the highest value its measure reached for one actor (what thresholds are calibrated against).
    public var peaks: [Detector.Peak]

    public init(records: Int, findings: [Finding], seconds: Double, detectorSeconds: Double, peaks: [Detector.Peak] = []) {
        self.records = records
        self.findings = findings
        self.seconds = seconds
        self.detectorSeconds = detectorSeconds
        self.peaks = peaks
    }
}
