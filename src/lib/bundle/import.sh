#!/bin/sh
# import.sh: import the airlock bundle this script sits in, on the seed node.
# Written into every bundle by `airlock bundle` and `airlock build`.
#
# It runs ./airlock-linux-<arch> (the standalone airlock, no Node.js needed)
# for this machine's arch. Where the bundle carries none for it,
# `./import.sh nginx ROOT` still works with sha256sum and tar alone.
set -eu

usage() {
  cat <<'EOF'
Usage: ./import.sh TARGET ARGS...   (the bundle is the folder this script is in)

  ./import.sh nginx ROOT [--endpoint URL --cluster-config FILE] [FLAGS]
      unpack the binaries and packages onto a web server's root
      (airlock import nginx BUNDLE --root ROOT ...)
  ./import.sh s3 --endpoint URL --bucket NAME [FLAGS]
      upload them to an S3-compatible store (airlock import s3 BUNDLE ...)
  ./import.sh registry --registry HOST[:PORT] [FLAGS]
      push every image to a registry (airlock import registry BUNDLE ...)
  ./import.sh verify
      check every checksum and digest of the bundle (airlock verify BUNDLE)

Each runs ./airlock-linux-<arch> for this machine (uname -m: x86_64 -> amd64,
aarch64 -> arm64); `./import.sh TARGET --help` lists its flags. Where the
bundle has no executable for this machine, `./import.sh nginx ROOT` checks the
archives against SHA256SUMS with sha256sum and unpacks them with tar.
EOF
}

die() {
  printf 'import.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}

bundle=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || die "cannot find the folder import.sh is in"

case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
exe="$bundle/airlock-linux-$arch"

[ $# -gt 0 ] || { usage >&2; exit 2; }
target=$1
shift

case $target in
  -h | --help | help) usage; exit 0 ;;
  nginx | s3 | registry | verify) ;;
  *) usage >&2; die "unknown target: $target" 2 ;;
esac

if [ -f "$exe" ]; then
  [ -x "$exe" ] || die "$exe is not executable (copied without its permissions?): run chmod +x $exe"
  case $target in
    verify) exec "$exe" verify "$bundle" "$@" ;;
    nginx)
      case ${1:-} in
        '' | -*) exec "$exe" import nginx "$bundle" "$@" ;;
        *) root=$1; shift; exec "$exe" import nginx "$bundle" --root "$root" "$@" ;;
      esac ;;
    *) exec "$exe" import "$target" "$bundle" "$@" ;;
  esac
fi

# No executable for this machine: nginx with sha256sum and tar alone.
[ "$target" = nginx ] || die "this bundle carries no airlock executable for $arch ($exe); only 'nginx ROOT' works without it (bundle again with --importer linux/$arch)"
case ${1:-} in
  -h | --help) usage; exit 0 ;;
  '' | -*) usage >&2; die "nginx needs ROOT, the web server's root folder" 2 ;;
esac
root=$1
shift
[ $# -eq 0 ] || die "without an airlock executable for $arch only 'nginx ROOT' works (not $*); bundle again with --importer linux/$arch" 2
command -v sha256sum >/dev/null 2>&1 || die "sha256sum is needed"
command -v tar >/dev/null 2>&1 || die "tar is needed"

# Folders 0755 and files 0644 (0755 for executables) whatever the caller's umask: under 000 anyone could replace
# what the nodes download and run, under 077 the web server could not read it. Files get their mode below.
umask 022
mkdir -p -- "$root" || die "cannot create $root"
root=$(CDPATH='' cd -- "$root" && pwd) || die "cannot enter $root"
work=$(mktemp -d "$root/.airlock-import.XXXXXX") || die "cannot make a temporary folder in $root"
trap 'rm -rf -- "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# An archive's bytes: the file, or its numbered parts (bundle --split) in order.
archive_bytes() {
  if [ -f "$bundle/$1" ]; then
    cat -- "$bundle/$1"
  else
    for part in "$bundle/$1".[0-9][0-9][0-9]*; do
      [ -f "$part" ] || die "$1 is missing from $bundle"
      cat -- "$part"
    done
  fi
}

# 1. Every line of SHA256SUMS for the two archives (or their parts), checked before anything is unpacked.
for name in offline-files.tar.gz component-tools.tar.gz; do
  pattern=$(printf '%s' "$name" | sed 's/\./\\./g')
  grep -E "^[0-9a-f]{64} [ *]$pattern(\.[0-9]{3,})?\$" "$bundle/SHA256SUMS" >"$work/$name.sums" || die "SHA256SUMS has no line for $name"
  (cd -- "$bundle" && sha256sum -c --quiet -- "$work/$name.sums") >&2 || die "$name does not match SHA256SUMS: nothing was imported"
done

# 2. Each archive listed and checked: only folders and regular files, all under the top folder, no absolute path, no '..'.
for pair in offline-files.tar.gz:offline-files component-tools.tar.gz:component-tools; do
  name=${pair%%:*}
  top=${pair#*:}
  archive_bytes "$name" | tar -tzf - >"$work/$name.names" || die "$name: cannot list it with tar"
  archive_bytes "$name" | tar -tvzf - >"$work/$name.long" || die "$name: cannot list it with tar"
  bad=$(cut -c1 "$work/$name.long" | grep -v '^[-d]$' | head -n 1) || true
  [ -z "$bad" ] || die "$name: holds a link or special file (type '$bad'); refusing it"
  [ "$(wc -l <"$work/$name.names")" -eq "$(wc -l <"$work/$name.long")" ] || die "$name: its listing does not add up; refusing it"
  while IFS= read -r entry; do
    case $entry in
      /* | *\\*) die "$name: refusing the entry '$entry' (absolute, or an escaped name)" ;;
      "$top" | "$top/") continue ;;
      "$top"/*) ;;
      *) die "$name: refusing the entry '$entry' (outside $top/)" ;;
    esac
    case /$entry/ in
      */../* | */./*) die "$name: refusing the entry '$entry' ('..' or '.')" ;;
    esac
  done <"$work/$name.names"
done

# 3. Unpacked into the temporary folder inside ROOT, then each file moved into place (a rename on the same file system).
mkdir "$work/tree"
for name in offline-files.tar.gz component-tools.tar.gz; do
  archive_bytes "$name" | tar -xzf - --strip-components=1 --no-same-owner -C "$work/tree" || die "$name: tar failed; nothing was moved into $root"
done

written=0
skipped=0
have_cmp=$(command -v cmp || true)
cd -- "$work/tree"
find . -type f | sed 's|^\./||' | sort >"$work/files"
while IFS= read -r rel; do
  dest="$root/$rel"
  # Never write through a link that is already in ROOT.
  dir=$(dirname -- "$rel")
  check="$root"
  oldifs=$IFS
  IFS=/
  set -f
  for part in $dir; do
    [ "$part" = . ] && continue
    check="$check/$part"
    [ ! -L "$check" ] || die "$check is a symbolic link; refusing to write through it"
    [ ! -e "$check" ] || [ -d "$check" ] || die "$check is in the way: not a folder"
  done
  set +f
  IFS=$oldifs
  [ ! -L "$dest" ] || die "$dest is a symbolic link; refusing to replace it"
  [ ! -d "$dest" ] || die "$dest is a folder; refusing to replace it"
  # The archive's modes are 0644 and 0755; nothing else (setuid, group-writable) is carried over.
  mode=0644
  [ ! -x "$rel" ] || mode=0755
  if [ -f "$dest" ] && [ -n "$have_cmp" ] && cmp -s -- "$rel" "$dest"; then
    chmod "$mode" -- "$dest"
    skipped=$((skipped + 1))
    continue
  fi
  mkdir -p -- "$root/$dir"
  chmod "$mode" -- "$rel"
  mv -f -- "$rel" "$dest"
  written=$((written + 1))
done <"$work/files"

printf '%s file(s) written, %s already there, under %s\n' "$written" "$skipped" "$root"
