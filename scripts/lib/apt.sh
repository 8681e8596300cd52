# Sourced by the scripts that install their own tools (setup, test_arm, tsan,
# fuzz): Debian packages, installed only when dpkg does not list them, so a
# second run installs nothing. Needs root, or sudo, only then.

# apt_install_missing TAG PACKAGE...: TAG names the caller in the log line.
apt_install_missing() {
  local tag=$1
  shift
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null |
      grep -q 'ok installed' || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=()
  [[ "$(id -u)" -ne 0 ]] && sudo=(sudo)
  echo "$tag: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" \
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
