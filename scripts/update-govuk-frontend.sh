#!/usr/bin/env bash
# Vendors a release of GOV.UK Frontend (the `govuk-frontend` npm package) into
# crates/hub/assets/govuk-frontend/: the precompiled CSS and JavaScript, the fonts and
# images they use, the web manifest, and the licence. The hub serves these files itself
# (docs/pages.md), so `cargo build` never needs npm; run this script, check the pages
# (`cargo test -p identity-hub --test tests -- browser::`) and commit the result.
#
#   scripts/update-govuk-frontend.sh 6.6.0
set -euo pipefail

version=${1:?usage: scripts/update-govuk-frontend.sh VERSION}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=crates/hub/assets/govuk-frontend
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "govuk-frontend@$version" >/dev/null && tar xzf "govuk-frontend-$version.tgz")
dist=$work/package/dist/govuk

rm -rf "$dest"
mkdir -p "$dest/assets"
cp "$dist/govuk-frontend.min.css" "$dist/govuk-frontend.min.js" "$dest/"
cp -r "$dist/assets/fonts" "$dist/assets/images" "$dist/assets/manifest.json" "$dest/assets/"
license=$(node -p "require('$work/package/package.json').license")
cat > "$dest/LICENSE.txt" <<LICENSE
govuk-frontend $version (https://github.com/alphagov/govuk-frontend)
Licence: $license. Copyright (c) Crown Copyright (Government Digital Service).
The fonts and images are the GOV.UK Frontend's, for use on GOV.UK services.
LICENSE
echo "$version" > "$dest/VERSION"
echo "govuk-frontend $version vendored into $dest"
