// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

/// Compiles `saferx bench` and its baseline read in, with the `Benchmarks` trait only.
let benchmarkSettings: [SwiftSetting] = [.define("SAFERX_BENCHMARKS", .when(traits: ["Benchmarks"]))]

let package = Package(
    name: "saferx",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "saferx", targets: ["saferx"]),
    ],
    // `saferx bench` compares protected reads with unprotected ones; the unprotected read exists only in a build with
    // this trait (`swift build -c release --traits Benchmarks`), never in the shipped binary.
    traits: [.trait(name: "Benchmarks", description: "Adds saferx bench and the unprotected baseline read it measures against.")],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // FHIR value types, ids, OperationOutcome. No I/O.
        .target(name: "SafeRxModel", swiftSettings: swiftSettings),
        // Who may see what: principals, roles, access scopes.
        .target(
            name: "SafeRxPolicy", dependencies: ["SafeRxModel"], resources: [.copy("Resources/access-policy.tsv")],
            swiftSettings: swiftSettings),
        // Keys and ciphertext: PHI encryption, blind indexes, signing keys; keys live outside the database.
        .target(
            name: "SafeRxVault",
            dependencies: ["SafeRxModel", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // What the storage layer asks of a SQL engine: connections, rows, values, migrations. No driver: the engines
        // below implement it (swift-nio's NIOCore/NIOPosix split: interface and implementations).
        .target(name: "SafeRxSQL", swiftSettings: swiftSettings),
        // The embedded engine: one SQLite file through GRDB.
        .target(
            name: "SafeRxSQLite", dependencies: ["SafeRxSQL", .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: swiftSettings),
        // The server engine: PostgreSQL through postgres-nio, shared by several SafeRx processes.
        .target(
            name: "SafeRxPostgres",
            dependencies: [
                "SafeRxSQL",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The tamper-evident audit chain: records, hashing, signed checkpoints, verification.
        .target(
            name: "SafeRxAudit",
            dependencies: [
                "SafeRxModel", "SafeRxVault", "SafeRxSQL",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Exfiltration detection: rules as data, the streaming detector over audit records. No I/O.
        .target(
            name: "SafeRxDetect", dependencies: ["SafeRxModel", "SafeRxAudit"], resources: [.copy("Resources/detection-rules.json")],
            swiftSettings: swiftSettings),
        // Breach response without I/O: data elements, the state-rules table, HIPAA obligations and deadlines, the risk
        // assessment, notices (letters as HTML and PDF, mail merge, HHS report).
        .target(
            name: "SafeRxBreach", dependencies: ["SafeRxModel"], resources: [.copy("Resources/state-rules.csv")], swiftSettings: swiftSettings),
        // What the gate takes and answers: the caller's access context, resources as returned, parsed searches, and the
        // values of accounts, fills, messages, caregivers, alerts, webhooks, incidents. Values only, no I/O: services,
        // the server and the CLI speak in them without being able to reach the gate's implementation.
        .target(name: "SafeRxStoreCore", dependencies: ["SafeRxModel", "SafeRxPolicy"], swiftSettings: swiftSettings),
        // The one PHI query gate (on either engine, through SafeRxSQL): every query that can return PHI takes an AccessContext.
        .target(
            name: "SafeRxStore",
            dependencies: [
                "SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxStoreCore", "SafeRxSQL", "SafeRxSQLite", "SafeRxPostgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings + benchmarkSettings
        ),
        // Services: accounts and tokens, FHIR interactions, demo pharmacy.
        .target(
            name: "SafeRxPharmacy",
            dependencies: [
                "SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore", "SafeRxStore",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            resources: [.copy("Resources/breached-passwords.txt"), .copy("Resources/NOTICE.md")],
            swiftSettings: swiftSettings
        ),
        // The web front's presentation: templates, sessions and CSRF, form parsing, SVG charts, the drug formulary.
        // No data access: the server's page controllers fetch through the gate and hand plain values to it.
        .target(
            name: "SafeRxWeb",
            dependencies: [
                "SafeRxModel",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Resources/Templates"), .copy("Resources/Static"), .copy("Resources/formulary.json")],
            swiftSettings: swiftSettings
        ),
        // The Hummingbird application: /health, /auth, /fhir, /account, /messages, and the pages (/portal, /console,
        // /privacy, /drugs).
        .target(
            name: "SafeRxServer",
            dependencies: [
                "SafeRxModel", "SafeRxPolicy", "SafeRxBreach", "SafeRxStoreCore", "SafeRxPharmacy", "SafeRxWeb",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "saferx",
            dependencies: [
                // Services, the HTTP server, and values: crypto primitives (sealed files, TOTP), detection rules, breach notices.
                "SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore", "SafeRxPharmacy", "SafeRxServer",
                // The gate and the audit log themselves only for `saferx bench` (its unprotected baseline read): a shipped
                // build cannot import them.
                .target(name: "SafeRxStore", condition: .when(traits: ["Benchmarks"])),
                .target(name: "SafeRxAudit", condition: .when(traits: ["Benchmarks"])),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // `saferx simulate` drives the server over HTTP as its users would.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings + benchmarkSettings
        ),
        .testTarget(name: "SafeRxModelTests", dependencies: ["SafeRxModel", "SafeRxPolicy"], swiftSettings: swiftSettings),
        .testTarget(name: "SafeRxDetectTests", dependencies: ["SafeRxModel", "SafeRxAudit", "SafeRxDetect"], swiftSettings: swiftSettings),
        .testTarget(name: "SafeRxBreachTests", dependencies: ["SafeRxModel", "SafeRxBreach"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SafeRxAuditTests",
            dependencies: [
                "SafeRxModel", "SafeRxVault", "SafeRxAudit", "SafeRxSQL", "SafeRxSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The gate alone: scoping SQL against a temporary SQLite file, no HTTP.
        .testTarget(
            name: "SafeRxStoreTests",
            dependencies: [
                "SafeRxModel", "SafeRxPolicy", "SafeRxAudit", "SafeRxStoreCore", "SafeRxStore", "SafeRxSQL", "SafeRxPostgres",
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        // The services without HTTP: operators' and people's contexts over a temporary store.
        .testTarget(
            name: "SafeRxPharmacyTests", dependencies: ["SafeRxModel", "SafeRxPolicy", "SafeRxAudit", "SafeRxStoreCore", "SafeRxStore", "SafeRxPharmacy"],
            swiftSettings: swiftSettings),
        .testTarget(name: "SafeRxWebTests", dependencies: ["SafeRxWeb"], swiftSettings: swiftSettings),
        .testTarget(
            name: "SafeRxServerTests",
            dependencies: [
                "SafeRxModel", "SafeRxPolicy", "SafeRxVault", "SafeRxAudit", "SafeRxDetect", "SafeRxBreach", "SafeRxStoreCore", "SafeRxStore",
                "SafeRxPharmacy", "SafeRxServer", "SafeRxWeb", "SafeRxSQL", "SafeRxPostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
    ]
)
