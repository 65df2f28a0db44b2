/** The fields of a Debian `Release` file that mirroring needs (https://wiki.debian.org/DebianRepository/Format). */
export interface AptRelease {
  architectures: string[]
  components: string[]
  acquireByHash: boolean
  /** Every file the Release lists under SHA256, by its path below `dists/<suite>/`. */
  sha256: Map<string, {sha256: string; size: number}>
}

export function parseRelease(text: string): AptRelease {
  const fields = new Map<string, string>()
  const sha256 = new Map<string, {sha256: string; size: number}>()
  let current = ''
  for (const line of text.split('\n')) {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current === 'sha256') {
        const [hex, size, path] = line.trim().split(/\s+/)
        if (hex && size && path && /^[0-9a-fA-F]{64}$/.test(hex))
          sha256.set(path, {sha256: hex.toLowerCase(), size: Number.parseInt(size, 10)})
      }
      continue
    }
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    current = line.slice(0, colon).toLowerCase()
    fields.set(current, line.slice(colon + 1).trim())
  }
  const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean)
  return {
    architectures: words('architectures'),
    components: words('components'),
    acquireByHash: /^yes$/i.test(fields.get('acquire-by-hash') ?? ''),
    sha256,
  }
}
