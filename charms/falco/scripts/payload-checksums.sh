#!/bin/bash
# Print the source-checksum lines of charmcraft.yaml's falco-payload part, from the official
# Falco release tarballs whose GPG signatures check out against the Falco packages key.
#
# Usage: payload-checksums.sh <falco version>     (`make falco-checksums` runs it)
#
# Needs curl, gpg and sha256sum, and a network that reaches falco.org and
# download.falco.org (the build VM of this project does not: there it fails at the first
# download, saying so). Nothing is installed: gpg works in a temporary home, deleted after.
#
# The key is the one download.falco.org's packages are signed with, fetched from
# https://falco.org/repo/falcosecurity-packages.asc and accepted only if its fingerprint is
# KEY_FINGERPRINT, the trusted key listed on https://falco.org/docs/setup/packages/
# ("Package signing"; expires 2028-12-10). Compare it there, out of band, before trusting the
# lines this prints; when Falco rotates its key, update KEY_FINGERPRINT after checking it.
set -euo pipefail

VERSION="${1:?usage: $0 <falco version>}"
KEY_URL="https://falco.org/repo/falcosecurity-packages.asc"
KEY_FINGERPRINT="478B2FBBC75F4237B731DA4365106822B35B1B1F"
BASE="https://download.falco.org/packages/bin"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"

fetch() {
    if ! curl --fail --silent --show-error --location --max-time "$3" -o "$2" "$1"; then
        echo "error: cannot download $1 (this needs network access to falco.org)" >&2
        exit 1
    fi
}

fetch "$KEY_URL" "$work/key.asc" 60
gpg --batch --quiet --import "$work/key.asc" 2>/dev/null
# gpg's machine-readable listing: fingerprint records, the fingerprint in field 10.
if ! gpg --batch --with-colons --fingerprint \
    | awk -F: -v key="$KEY_FINGERPRINT" '$1 ~ /^fp/ && $10 == key { found = 1 } END { exit !found }'; then
    echo "error: $KEY_URL does not hold the key $KEY_FINGERPRINT" >&2
    exit 1
fi

echo "    source-checksum:"
for arch in x86_64 aarch64; do
    case "$arch" in x86_64) platform=amd64 ;; aarch64) platform=arm64 ;; esac
    tarball="falco-${VERSION}-${arch}.tar.gz"
    fetch "$BASE/$arch/$tarball" "$work/$tarball" 900
    fetch "$BASE/$arch/$tarball.asc" "$work/$tarball.asc" 60
    # VALIDSIG's last field is the primary key's fingerprint (a subkey may sign).
    if ! gpg --batch --status-fd 1 --verify "$work/$tarball.asc" "$work/$tarball" 2>/dev/null \
        | grep -q "^\[GNUPG:\] VALIDSIG .* ${KEY_FINGERPRINT}\$"; then
        echo "error: $tarball is not signed by $KEY_FINGERPRINT" >&2
        exit 1
    fi
    digest="$(sha256sum "$work/$tarball" | cut -d' ' -f1)"
    echo "      - to $platform: sha256/$digest"
done
