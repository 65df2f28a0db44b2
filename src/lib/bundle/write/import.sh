#!/bin/sh
# import.sh: import the airlock bundle this script sits in, on the seed node.
# Written into every bundle by `airlock bundle` and `airlock build`.
#
# It runs ./airlock-linux-<arch> (the standalone airlock, no Node.js needed)
# for this machine's arch, once its sha256 matched SHA256SUMS (a delta's: the
# base's, see usage). Where the bundle carries none for it (or with
# --no-executable), `./import.sh nginx ROOT` still works with sha256sum and tar alone.
set -eu

usage() {
  cat <<'EOF'
Usage: ./import.sh [--no-executable] COMMAND ARGS...   (the bundle is the folder this script is in)

  ./import.sh nginx ROOT [--endpoint URL --cluster-config FILE] [FLAGS]
      unpack the binaries and packages onto a web server's root
      (airlock import nginx BUNDLE --root ROOT ...)
  ./import.sh s3 --endpoint URL --bucket NAME [FLAGS]
      upload them to an S3-compatible store (airlock import s3 BUNDLE ...)
  ./import.sh registry --registry HOST[:PORT] [FLAGS]
      push every image to a registry (airlock import registry BUNDLE ...)
  ./import.sh serve [--listen ADDR:PORT] [FLAGS]
      serve the bundle in place, read-only: a registry and a file server
      (airlock serve BUNDLE ...)
  ./import.sh verify [FLAGS]
      check every checksum and digest of the bundle (airlock verify BUNDLE)
  ./import.sh inspect [FLAGS]
      list the bundle's images, binaries and packages (airlock inspect BUNDLE)

Each runs ./airlock-linux-<arch> for this machine (uname -m: x86_64 -> amd64,
aarch64 -> arm64), after checking it against its line of SHA256SUMS: one that
differs is not run. `./import.sh COMMAND --help` lists its flags.

A delta (bundle --since) leaves out the executable its base carries with the
same bytes: import.sh then runs the base's, found in a folder named with
--base DIR or in a folder beside this bundle's, by the sha256 bundle.json
lists for it.

Without the executable (--no-executable, or none for this machine) only
`./import.sh nginx ROOT` works: it checks the archives against SHA256SUMS with
sha256sum and unpacks them with tar. It cannot check a signature: there
--bundle-key is refused (the executable checks it).
EOF
}

die() {
  printf 'import.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}

# "1 file", "3 files": a count and its word, as the executable's messages say them.
plural() {
  if [ "$1" = 1 ]; then printf '%s %s' "$1" "$2"; else printf '%s %ss' "$1" "$2"; fi
}

bundle=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || die "cannot find the folder import.sh is in"

case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
name="airlock-linux-$arch"

no_exe=
while [ $# -gt 0 ]; do
  case $1 in
    --no-executable) no_exe=1; shift ;;
    *) break ;;
  esac
done

[ $# -gt 0 ] || { usage >&2; exit 2; }
target=$1
shift

case $target in
  -h | --help | help) usage; exit 0 ;;
  nginx | s3 | registry | serve | verify | inspect) ;;
  *) usage >&2; die "unknown command: $target" 2 ;;
esac

# --base DIR: where a delta's base is (serve and verify take it too; for the others it only finds the executable).
bases=
n=$#
while [ "$n" -gt 0 ]; do
  a=$1
  shift
  n=$((n - 1))
  case $a in
    --base=*) b=${a#--base=} ;;
    --base)
      [ "$n" -gt 0 ] || die "--base needs the base bundle's folder" 2
      b=$1
      shift
      n=$((n - 1)) ;;
    *) set -- "$@" "$a"; continue ;;
  esac
  bases="$bases$b
"
  case $target in serve | verify) set -- "$@" --base "$b" ;; esac
done

sha_of() { sha256sum <"$1" | cut -c1-64; }
# The sha256 SHA256SUMS gives for a file of the bundle, or nothing.
sum_of() {
  pattern=$(printf '%s' "$1" | sed 's/\./\\./g')
  grep -E "^[0-9a-f]{64} [ *]$pattern\$" "$bundle/SHA256SUMS" 2>/dev/null | head -n 1 | cut -c1-64
}

# The executable and the sha256 it must have: this bundle's (its line of SHA256SUMS), else a delta's base's (the
# sha256 bundle.json `tools` gives it, bundle.json itself checked against SHA256SUMS first).
exe=
want=
if [ -z "$no_exe" ]; then
  if [ -f "$bundle/$name" ]; then
    exe="$bundle/$name"
    want=$(sum_of "$name")
    [ -n "$want" ] || die "SHA256SUMS has no line for $name: refusing to run it unchecked. Copy the bundle again; or, to import the files without it on purpose, run ./import.sh --no-executable nginx ROOT"
  elif [ -f "$bundle/bundle.json" ]; then
    want=$(tr -d ' \t\r\n' <"$bundle/bundle.json" | grep -o "{\"path\":\"$name\"[^}]*\"fromBase\":true" | grep -o '"sha256":"[0-9a-f]\{64\}"' | head -n 1 | cut -c11-74) || true
  fi
fi
[ -z "$want" ] || command -v sha256sum >/dev/null 2>&1 || die "sha256sum is needed to check $name before running it"
if [ -z "$exe" ] && [ -n "$want" ]; then
  [ "$(sha_of "$bundle/bundle.json")" = "$(sum_of bundle.json)" ] || die "bundle.json does not match SHA256SUMS: nothing was imported"
  # Folders named with --base first, then every folder beside this bundle's.
  list=$bases
  for d in "$bundle"/../*/; do
    [ "$(CDPATH='' cd -- "$d" && pwd)" = "$bundle" ] || list="$list$d
"
  done
  while IFS= read -r d; do
    if [ -z "$d" ] || [ ! -f "$d/$name" ]; then continue; fi
    if [ "$(sha_of "$d/$name")" = "$want" ]; then
      exe="$d/$name"
      break
    fi
  done <<EOF
$list
EOF
  [ -n "$exe" ] || die "this delta leaves $name to its base, and no folder named with --base nor beside $bundle holds it with the sha256 bundle.json lists ($want): put the base bundle's folder beside this one, or name it with --base DIR"
fi

if [ -n "$exe" ]; then
  got=$(sha_of "$exe")
  [ "$got" = "$want" ] || die "$exe does not match its line of SHA256SUMS (sha256 $got, expected $want): refusing to run it; nothing was imported. Copy the bundle again; or, to import the files without it on purpose, run ./import.sh --no-executable nginx ROOT (sha256sum and tar alone)"
  [ -x "$exe" ] || die "$exe is not executable (copied without its permissions?): run chmod +x $exe"
  case $target in
    verify | serve | inspect) exec "$exe" "$target" "$bundle" "$@" ;;
    nginx)
      case ${1:-} in
        '' | -*) exec "$exe" import nginx "$bundle" "$@" ;;
        *) root=$1; shift; exec "$exe" import nginx "$bundle" --root "$root" "$@" ;;
      esac ;;
    *) exec "$exe" import "$target" "$bundle" "$@" ;;
  esac
fi

# No executable for this machine: nginx with sha256sum and tar alone.
[ "$target" = nginx ] || [ -z "$no_exe" ] || die "--no-executable: only 'nginx ROOT' works without the executable (not $target)" 2
[ "$target" = nginx ] || die "this bundle carries no airlock executable for $arch ($bundle/$name); only 'nginx ROOT' works without it (bundle again with --importer linux/$arch)"
case ${1:-} in
  -h | --help) usage; exit 0 ;;
  '' | -*) usage >&2; die "nginx needs ROOT, the web server's root folder" 2 ;;
esac
root=$1
shift
for a in "$@"; do
  case $a in
    --bundle-key | --bundle-key=*) die "--bundle-key: without the airlock executable import.sh cannot check SHA256SUMS.sig (sha256sum and tar check sums, not signatures); nothing was imported. Run it with the bundle's airlock-linux-$arch, or check the signature elsewhere (airlock verify BUNDLE --bundle-key KEY) and run again without --bundle-key" 2 ;;
  esac
done
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

printf '%s written, %s already there, under %s\n' "$(plural "$written" file)" "$skipped" "$root"
