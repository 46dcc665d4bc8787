#!/bin/sh
# The library's floors (lib/lib.rs): each may use only the floors below it.
# Fails naming every `use` that points up or sideways.
cd "$(dirname "$0")/../lib" || exit 1
status=0
check() { # FLOOR FORBIDDEN...
	floor=$1; shift
	for above in "$@"; do
		if grep -rnE "crate::$above\b" "$floor"; then
			echo "lib/$floor uses $above, which it may not (see lib/lib.rs)" >&2
			status=1
		fi
	done
}
check format app logdir net kernel
check sys app logdir net kernel format
check cli app logdir net kernel format sys
check logdir app net kernel
check net app logdir kernel
check kernel app logdir net
for f in app/*.rs app/*/mod.rs; do
	self=$(basename "$(dirname "$f")"); [ "$self" = app ] && self=$(basename "$f" .rs)
	if grep -nE 'crate::app::' "$f" | grep -v "crate::app::$self\b"; then
		echo "lib/$f uses another program's engine" >&2
		status=1
	fi
done
exit $status
