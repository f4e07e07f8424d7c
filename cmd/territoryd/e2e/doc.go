// Package e2e holds the end-to-end tests and benchmarks of territoryd against
// the real services: embedded etcd (runtime/etcdembed, in the test process),
// the Pulsar standalone with its BookKeeper bookies, and an S3 bucket, with
// real `territoryd run` and `territoryd manager` processes built from this
// module. They need the build tag `integration` and the environment that
// scripts/test-integration.sh exports (TERRITORY_PULSAR_URL,
// TERRITORY_S3_ENDPOINT, ...); without it every test skips.
//
//	TERRITORY_IT_PACKAGES=./cmd/territoryd/e2e scripts/test-integration.sh -v
//	TERRITORY_IT_PACKAGES=./cmd/territoryd/e2e scripts/test-integration.sh -run '^$' -bench .
package e2e
