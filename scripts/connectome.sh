#!/usr/bin/env bash
# connectome.sh: fetch the C. elegans hermaphrodite connectome (Cook et al. 2019,
# Nature 571) that ships inside the PyPI package `cect` (the OpenWorm C. elegans
# Connectome Toolbox, MIT), extract cect/data/herm_full_edgelist.csv into a cache
# outside git, and verify both the wheel and the file against pinned SHA-256
# checksums. The data is never committed.
#
#   scripts/connectome.sh fetch     # download once (pip download), extract, verify; prints CONNECTOME=<path>
#   scripts/connectome.sh path      # print the path the Go code reads (whether or not it is there)
#   scripts/connectome.sh verify    # exit 0 only if the cached file is there and matches its checksum
#
# Environment:
#   TERRITORY_CACHE        cache directory (default: ${XDG_CACHE_HOME:-$HOME/.cache}/territory, the
#                          directory Go's os.UserCacheDir()/territory names). The file goes to
#                          $TERRITORY_CACHE/cect-0.3.5/herm_full_edgelist.csv, which is where the
#                          `connectome` scenario and the tests look (connectome.DefaultPath), unless
#                          TERRITORY_CONNECTOME names another file (this script never writes that one).
#   PIP                    the pip command (default: python3 -m pip)
#
# fetch is idempotent: a verified file is left alone. A file that fails its
# checksum is removed and fetched again; a download that fails its checksum is
# refused (exit 1) and nothing is left at the path.
set -euo pipefail

CECT_VERSION=0.3.5
WHEEL="cect-${CECT_VERSION}-py3-none-any.whl"
WHEEL_SHA256=ea47f7a6b0d69a8d0bd3b0ade4037b7cc32d31ad0449f823d7ec153d6fd25057
MEMBER=cect/data/herm_full_edgelist.csv
CSV_SHA256=142693f17556148d7f962835b18ac6dd5af18b7467eef61815ebc1dd5474c0ca

CACHE="${TERRITORY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/territory}"
DIR="${CACHE}/cect-${CECT_VERSION}"
CSV="${DIR}/herm_full_edgelist.csv"
PIP="${PIP:-python3 -m pip}"

log() { echo "connectome.sh: $*" >&2; }

sha_ok() { # file sha256
	[[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

fetch() {
	if sha_ok "${CSV}" "${CSV_SHA256}"; then
		echo "CONNECTOME=${CSV}"
		return 0
	fi
	if [[ -e "${CSV}" ]]; then
		log "${CSV} does not match its checksum; fetching it again"
		rm -f "${CSV}"
	fi
	mkdir -p "${DIR}"
	exec 9>"${DIR}/.lock"
	flock 9
	if sha_ok "${CSV}" "${CSV_SHA256}"; then # fetched by a concurrent call
		echo "CONNECTOME=${CSV}"
		return 0
	fi
	if ! sha_ok "${DIR}/${WHEEL}" "${WHEEL_SHA256}"; then
		rm -f "${DIR}/${WHEEL}"
		log "pip download cect==${CECT_VERSION} (the wheel only, no dependencies)"
		${PIP} download --quiet --no-deps --only-binary :all: --dest "${DIR}" "cect==${CECT_VERSION}" >&2
		if ! sha_ok "${DIR}/${WHEEL}" "${WHEEL_SHA256}"; then
			log "the downloaded ${WHEEL} does not match the pinned SHA-256 ${WHEEL_SHA256}; refusing it"
			rm -f "${DIR}/${WHEEL}"
			exit 1
		fi
	fi
	local tmp="${CSV}.tmp.$$"
	python3 - "${DIR}/${WHEEL}" "${MEMBER}" "${tmp}" <<'EOF'
import sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
EOF
	if ! sha_ok "${tmp}" "${CSV_SHA256}"; then
		rm -f "${tmp}"
		log "${MEMBER} in ${WHEEL} does not match the pinned SHA-256 ${CSV_SHA256}; refusing it"
		exit 1
	fi
	mv -f "${tmp}" "${CSV}"
	log "verified ${CSV} (sha256 ${CSV_SHA256})"
	echo "CONNECTOME=${CSV}"
}

case "${1:-fetch}" in
fetch) fetch ;;
path) echo "${CSV}" ;;
verify)
	if sha_ok "${CSV}" "${CSV_SHA256}"; then
		echo "CONNECTOME=${CSV}"
	else
		log "${CSV} is missing or does not match its checksum; run scripts/connectome.sh fetch"
		exit 1
	fi
	;;
*)
	echo "usage: $0 fetch|path|verify" >&2
	exit 2
	;;
esac
