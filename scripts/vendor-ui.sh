#!/usr/bin/env bash
# Re-fetch the browser libraries of `sbdk ui` (issue #18) from their pinned npm releases and copy
# their dist files and licences into sbdk/ui/static/vendor/. The page must work offline from the
# installed package, so these files are committed; this script only refreshes them, and needs
# nothing but npm and the npm registry. To upgrade one, change its version below, run the script,
# update sbdk/ui/static/vendor/README.md and check the page.
#
# The files are copied byte for byte (npm pack checks each tarball against the registry's
# integrity hash); the script prints their sha256 so a review can compare them with the README.
set -euo pipefail

CYTOSCAPE=3.35.0
# cytoscape-dagre 4.x bundles @dagrejs/dagre and @dagrejs/graphlib into its dist file, so no
# separate dagre script is needed; their licences are copied from the versions it bundles.
CYTOSCAPE_DAGRE=4.0.1
DAGRE_BUNDLED=3.0.0
GRAPHLIB_BUNDLED=4.0.1
CHARTJS=4.6.1
HIGHLIGHTJS=11.12.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/sbdk/ui/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# unpack SPEC -> prints the folder holding the unpacked package
unpack() {
    local spec="$1" tarball dir
    tarball="$(cd "$work" && npm pack --silent --ignore-scripts "$spec" | tail -n 1)"
    dir="$work/${tarball%.tgz}"
    mkdir -p "$dir"
    tar -xzf "$work/$tarball" -C "$dir"
    echo "$dir/package"
}

# copy SRC DEST_RELATIVE
put() {
    mkdir -p "$(dirname "$dest/$2")"
    cp "$1" "$dest/$2"
}

pkg="$(unpack "cytoscape@$CYTOSCAPE")"
put "$pkg/dist/cytoscape.min.js" cytoscape/cytoscape.min.js
put "$pkg/LICENSE" cytoscape/LICENSE

pkg="$(unpack "cytoscape-dagre@$CYTOSCAPE_DAGRE")"
put "$pkg/dist/cytoscape-dagre.min.js" cytoscape-dagre/cytoscape-dagre.min.js
put "$pkg/LICENSE" cytoscape-dagre/LICENSE
pkg="$(unpack "@dagrejs/dagre@$DAGRE_BUNDLED")"
put "$pkg/LICENSE" cytoscape-dagre/LICENSE.dagre
pkg="$(unpack "@dagrejs/graphlib@$GRAPHLIB_BUNDLED")"
put "$pkg/LICENSE" cytoscape-dagre/LICENSE.graphlib

pkg="$(unpack "chart.js@$CHARTJS")"
put "$pkg/dist/chart.umd.min.js" chart.js/chart.umd.min.js
put "$pkg/LICENSE.md" chart.js/LICENSE.md

# The ready browser build: highlight.min.js has the common languages, SQL among them.
pkg="$(unpack "@highlightjs/cdn-assets@$HIGHLIGHTJS")"
put "$pkg/highlight.min.js" highlight.js/highlight.min.js
put "$pkg/styles/github.min.css" highlight.js/github.min.css
put "$pkg/LICENSE" highlight.js/LICENSE

cd "$dest"
find . -type f ! -name README.md | sort | xargs sha256sum
du -sh --apparent-size . | sed 's/\t.*/ in total/'
