#!/usr/bin/env bash
# A nightly job using only the pfx command-line client (pip install ./cli):
# import a folder of PFX files with its manifest, wait for the import, list one user's
# certificates and remove one of them.
#
#   PFX_PORTAL_URL=http://127.0.0.1:8000 PFX_PORTAL_TOKEN=pfxp_... \
#       scripts/cli_import_example.sh FOLDER USER_UPN
#
# The token comes from Account > API tokens, or on the server (with `make run`, for the demo's
# Intune Administrator): .venv/bin/python manage.py api_token --email admin@contoso.com
#
# FOLDER holds the PFX files (or one ZIP) and manifest.csv (filename,upn,password,purpose).
# Exits with the client's exit code at the first step that fails (see `pfx --help`).
set -euo pipefail
folder="$1"
upn="$2"
pfx="${PFX:-pfx}"

echo "== importing $folder"
$pfx import-user-pfx --folder "$folder" --quiet

echo "== certificates of $upn"
$pfx get-user-pfx --upn "$upn"

thumbprint="$($pfx get-user-pfx --upn "$upn" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["thumbprint"])')"
echo "== removing $thumbprint"
$pfx remove-user-pfx --upn "$upn" --thumbprint "$thumbprint"

echo "== left for $upn"
$pfx get-user-pfx --upn "$upn" || test $? -eq 5
