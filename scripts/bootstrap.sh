#!/usr/bin/env bash
# Prepare .venv with Python >= 3.12 and the pinned requirements.
# Re-installs only when a requirements file changes.
set -euo pipefail
cd "$(dirname "$0")/.."

MIN_MINOR=12
REQUIREMENTS="requirements/dev.txt"

good_python() {
    "$1" -c "import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, $MIN_MINOR) else 1)" >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.14 python3.13 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && good_python "$(command -v "$candidate")"; then
            command -v "$candidate"
            return 0
        fi
    done
    # pyenv keeps interpreters outside PATH unless its shims are set up.
    local root="${PYENV_ROOT:-$HOME/.pyenv}"
    if command -v pyenv >/dev/null 2>&1; then
        root="$(pyenv root)"
    fi
    if [ -d "$root/versions" ]; then
        for candidate in $(ls -1 "$root/versions" | sort -rV); do
            if [ -x "$root/versions/$candidate/bin/python3" ] && good_python "$root/versions/$candidate/bin/python3"; then
                echo "$root/versions/$candidate/bin/python3"
                return 0
            fi
        done
    fi
    return 1
}

if [ -x .venv/bin/python ] && ! good_python .venv/bin/python; then
    echo "bootstrap: .venv uses Python older than 3.$MIN_MINOR; recreating it" >&2
    rm -rf .venv
fi

if [ ! -x .venv/bin/python ]; then
    if ! python="$(find_python)"; then
        echo "bootstrap: PFX Portal needs Python 3.$MIN_MINOR or newer with the venv module." >&2
        echo "bootstrap: none was found on PATH (python3.14, python3.13, python3.12, python3) or under pyenv (${PYENV_ROOT:-$HOME/.pyenv}/versions)." >&2
        echo "bootstrap: install one (e.g. 'pyenv install 3.13' or your distribution's python3.13 and python3.13-venv), or set PYTHON=/path/to/python3." >&2
        exit 1
    fi
    echo "bootstrap: creating .venv with $python ($("$python" --version))"
    "$python" -m venv .venv
fi

stamp=".venv/.requirements.sha256"
wanted="$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    echo "bootstrap: installing $REQUIREMENTS"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    echo "$wanted" >"$stamp"
fi
