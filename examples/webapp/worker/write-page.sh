#!/bin/sh
# Rewrites the page the web service serves, so a reader can see both containers at work.
mkdir -p /srv/www
n=0
while true; do
  n=$((n + 1))
  printf '<html><title>%s</title><body><p>%s (update %d at %s)</p></body></html>\n' \
    "$PAGE_TITLE" "$GREETING" "$n" "$(date -u +%H:%M:%S)" > /srv/www/index.html.tmp
  mv /srv/www/index.html.tmp /srv/www/index.html
  sleep "${INTERVAL:-3}"
done
