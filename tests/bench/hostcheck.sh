# Helpers shared by the network benchmarks, sourced after $W (a private temp dir) is set.

# Saves the host's nftables ruleset and links under $W/<tag> ("before", "after").
host_state() {
  nft list ruleset >"$W/nft.$1" 2>/dev/null || true
  ip -o link | awk -F': ' '{print $2}' | sort >"$W/links.$1"
}

# Warns when the host's ruleset or links differ between "before" and "after".
host_state_check() {
  if ! cmp -s "$W/nft.before" "$W/nft.after"; then
    echo "WARNING: nft ruleset differs from before the run (other tests may be running):"
    diff "$W/nft.before" "$W/nft.after" | head -40
  fi
  if ! cmp -s "$W/links.before" "$W/links.after"; then
    echo "WARNING: links differ from before the run:"
    diff "$W/links.before" "$W/links.after" | head -20
  fi
}

# The median of the numbers on stdin, one a line ("nan" for none).
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
# One field ("p50", "p99", "mean") of a netbench stats line on stdin.
field() { awk -v k="$1" '{for (i=1;i<NF;i++) if ($i==k) {print $(i+1); exit}}'; }
