/**
 * The architecture names of each OS package type for the manifest's
 * platforms (`linux/amd64` -> apt `amd64`, rpm `x86_64`). The one table,
 * for `spec.osPackages` entries that give no `architectures`.
 */

const APT: Record<string, string> = {
  'linux/amd64': 'amd64',
  'linux/arm64': 'arm64',
  'linux/arm64/v8': 'arm64',
  'linux/arm/v7': 'armhf',
  'linux/arm/v6': 'armel',
  'linux/arm/v5': 'armel',
  'linux/386': 'i386',
  'linux/ppc64le': 'ppc64el',
  'linux/s390x': 's390x',
  'linux/riscv64': 'riscv64',
  'linux/mips64le': 'mips64el',
}

const RPM: Record<string, string> = {
  'linux/amd64': 'x86_64',
  'linux/arm64': 'aarch64',
  'linux/arm64/v8': 'aarch64',
  'linux/arm/v7': 'armv7hl',
  'linux/386': 'i686',
  'linux/ppc64le': 'ppc64le',
  'linux/s390x': 's390x',
  'linux/riscv64': 'riscv64',
}

/** apt architectures of the platforms (unknown ones left out), in order, each once. */
export function aptArchitectures(platforms: string[]): string[] {
  return unique(platforms.map((p) => APT[p]))
}

/** rpm architectures of the platforms, `noarch` always last. */
export function rpmArchitectures(platforms: string[]): string[] {
  return unique([...platforms.map((p) => RPM[p]), 'noarch'])
}

function unique(list: (string | undefined)[]): string[] {
  return [...new Set(list.filter((a): a is string => a !== undefined))]
}
