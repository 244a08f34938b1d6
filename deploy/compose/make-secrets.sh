#!/bin/sh
# Writes the Docker secrets compose.yaml reads, under deploy/compose/secrets/ (mode 600, never committed).
# Random values for what Shopdesk generates itself; carrier_api_key and hf_token are yours to fill in.
# Existing files are kept, so running it again never changes a password a database already uses.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
umask 077

random() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }

write() {  # name value
    if [ -s "$dir/$1" ]; then echo "kept    secrets/$1"; else printf '%s' "$2" > "$dir/$1"; echo "wrote   secrets/$1"; fi
}

write django_secret_key "$(random)"
write postgres_password "$(random)"
write database_url "postgres://shopdesk:$(cat "$dir/postgres_password")@postgres:5432/shopdesk"
write llm_api_key "$(random)"
write metrics_token "$(random)"
write grafana_admin_password "$(random)"
for name in carrier_api_key hf_token; do
    [ -e "$dir/$name" ] || : > "$dir/$name"
done
[ -s "$dir/carrier_api_key" ] || echo "fill in secrets/carrier_api_key: your carrier tracking API's key (required)"
echo "secrets/hf_token may stay empty: the profiles' models are public on the Hugging Face Hub"
