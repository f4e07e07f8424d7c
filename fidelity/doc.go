// Package fidelity holds the differential fidelity tests of the simulated
// services (in its test files): seeded random operation sequences, the
// malformed inputs included, run against each simulated service and its real
// counterpart, every answer compared.
//
//   - The coordination store (sim/coordstore) against an embedded etcd
//     server through runtime/etcdcoord (TestCoordFidelity, and
//     TestLeaseExpiryTiming for when a lease's keys go).
//   - The object store (sim/blobstore) against a filesystem bucket
//     (TestBlobFidelity) and, under the integration build tag, the S3 server
//     of scripts/s3-server.sh (TestBlobFidelityS3), both through
//     runtime/blob.
//   - The log (sim/replog) against Pulsar with 3 bookies through
//     runtime/pulsarlog, under the integration build tag
//     (TestLogFidelityPulsar): two writer processes that fence each other and
//     an auditor, with ambiguous calls, compared against every simulated
//     world that agrees with the real answers so far (log_test.go). The
//     comparison is itself tested against the simulator and planted defects
//     (log_self_test.go).
//
// With -short a few dozen sequences run; without, at least 500 per service
// (what CI runs: the unit tests, and scripts/test-integration.sh for Pulsar
// and S3); with TERRITORY_FIDELITY_LONG=1, 10,000. Each test prints its
// agreement per class of operation and writes it to
// out/fidelity/<service>.json (TERRITORY_FIDELITY_OUT). A difference the
// README lists as a deliberate abstraction is counted as documented, never
// as agreeing; any other fails the test.
package fidelity
