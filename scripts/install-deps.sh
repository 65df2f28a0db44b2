#!/usr/bin/env bash
# Debian packages that the tests, the demo and the benchmark run against:
# the distribution registry, nginx, skopeo, openssl, htpasswd and Ceph RGW.
set -euo pipefail

# time: GNU time, which the benchmarks read peak RSS from.
# strace: shows the tests that import nginx flushes staged files before it renames them.
# tinyproxy: the forward proxy the tests point HTTP_PROXY / HTTPS_PROXY at.
# python3-pyte: the terminal emulator test/helpers/pty_screen.py reads the live view with.
# containerd, podman: real clients pulling from `airlock serve`.
# mmdebstrap: the minimal Debian root file system the seed-node test imports a bundle in
# (entered with chroot inside unshare; ip brings up its loopback); shellcheck: checks import.sh.
# rclone: the usual tool the count benchmark measures import s3 against.
# qemu-user-static, libc6-arm64-cross, libstdc++6-arm64-cross: the release test runs the arm64 executable
# (qemu-aarch64-static -L /usr/aarch64-linux-gnu). cosign is not in Debian: the signing tests make its key format.
pkgs=(docker-registry nginx-light skopeo openssl apache2-utils ceph-mon ceph-osd radosgw curl ca-certificates time tinyproxy containerd podman python3-pyte mmdebstrap shellcheck iproute2 util-linux strace rclone qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross)
# apt-utils (apt-ftparchive), dpkg-dev, gnupg, xz-utils: the signed apt repository the osPackages
# tests build; python3: its http.server serves the imported root inside the seed node's namespace.
pkgs+=(apt-utils dpkg-dev gnupg xz-utils python3)
# rpm (rpmbuild, rpmsign), createrepo-c, dnf: the signed rpm repository the osPackages tests build, and the
# dnf --installroot that installs from the imported root.
pkgs+=(rpm createrepo-c dnf)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
