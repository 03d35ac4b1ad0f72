#!/bin/sh
# Clones the pipeline repository that model-server follows and the retrain Job trains in:
# $PIPELINE_GIT_URL at $PIPELINE_GIT_BRANCH (default main) into $PIPELINE_REPO. The pods run it
# as their init container (the image installs it as /usr/local/bin/clone-repo).
#
# A checkout already there (the pod's volume outlived a restarted container) is kept: the
# server fetches and fast-forwards it itself. A token in GITHUB_TOKEN, GH_TOKEN or GIT_TOKEN
# (the names gitops::token reads) reaches git through a credential helper, so it never lands in
# the URL, in .git/config or in the log.
set -eu

url="${PIPELINE_GIT_URL:?set PIPELINE_GIT_URL to the clone URL of the pipeline repository}"
repo="${PIPELINE_REPO:?set PIPELINE_REPO to the folder to clone into}"
branch="${PIPELINE_GIT_BRANCH:-main}"

if [ -e "$repo/.git" ]; then
    echo "clone-repo: $repo is already a checkout; the server keeps it up to date"
    exit 0
fi

CLONE_TOKEN="${GITHUB_TOKEN:-${GH_TOKEN:-${GIT_TOKEN:-}}}"
export CLONE_TOKEN
helper='!f() { test "$1" = get && test -n "$CLONE_TOKEN" && printf "username=x-access-token\npassword=%s\n" "$CLONE_TOKEN"; }; f'

# Cloned beside the target and renamed, so a clone cut short leaves no half checkout behind.
partial="$repo.partial"
rm -rf "$partial"
git -c credential.helper= -c credential.helper="$helper" clone --branch "$branch" -- "$url" "$partial"
# Commits by model-server (feedback) and promote (models) carry this name.
git -C "$partial" config user.name "${PIPELINE_GIT_USER_NAME:-mnist-gitops}"
git -C "$partial" config user.email "${PIPELINE_GIT_USER_EMAIL:-mnist-gitops@localhost}"
mv "$partial" "$repo"
echo "clone-repo: $url ($branch) is checked out at $repo"
