#!/bin/bash
# scripts/layers.sh [ROOT]: the layering of keyrite's folders (docs/HACKING.md),
# checked: a source may include headers of its own folder and of the folders
# below it, never of one beside or above it. Run by make lint; exits 1 with
# one line per include out of place.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}

# Each folder, bottom to top, and the folders it may include.
declare -A may=(
	[util]=""
	[crypto]="util"
	[hsm]="util crypto"
	[store]="util crypto"
	[policy]="util crypto store"
	[ca]="util crypto hsm store policy"
	[fw]="util crypto hsm store policy ca"
	[publish]="util crypto hsm store policy ca"
	[ceremony]="util crypto hsm policy ca"
	[registry]="util crypto hsm store policy ca"
	[serve]="util crypto hsm store policy ca publish registry"
	[cli]="util crypto hsm store policy ca fw publish ceremony registry serve"
)

bad=0
for dir in "$root"/*/; do
	folder=$(basename "$dir")
	[ -n "$(find "$dir" -maxdepth 1 -name '*.[ch]' -print -quit)" ] || continue
	case $folder in tests | bench | build*) continue ;; esac
	if [ -z "${may[$folder]+set}" ]; then
		echo "layers: $folder/ holds C sources but has no place in scripts/layers.sh" >&2
		bad=1
		continue
	fi
	while IFS=: read -r file line text; do
		used=$(sed -n 's|^#include "\.\./\([a-z]*\)/.*|\1|p' <<<"$text")
		[ -n "$used" ] || continue
		case " ${may[$folder]} " in *" $used "*) continue ;; esac
		echo "layers: ${file#"$root"/}:$line includes $used/: $folder/ may include only" \
			"${may[$folder]:-no other folder}" >&2
		bad=1
	done < <(grep -Hn '^#include "\.\./' "$dir"*.[ch] || true)
done
exit $bad
