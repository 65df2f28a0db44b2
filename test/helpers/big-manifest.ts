/**
 * A large, valid manifest of about `bytes` bytes: half images (plain and
 * pinned with platforms), half binaries. For the load test (correctness)
 * and `npm run bench -- validate` (its speed).
 */
export function bigManifest(bytes: number): {text: string; images: number; binaries: number} {
  const parts = [
    'apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: big\nspec:\n  platforms: [linux/amd64, linux/arm64]\n  images:\n',
  ]
  let size = 0
  let i = 0
  while (size < bytes / 2) {
    const s = `    - registry.example.com/team${i % 50}/app-${i}:1.${i}.0\n    - ref: "quay.io/org/image-${i}:v${i}"  # pinned\n      platforms: [linux/amd64]\n`
    parts.push(s)
    size += s.length
    i++
  }
  parts.push('  binaries:\n')
  let j = 0
  while (size < bytes) {
    const s = `    - url: https://downloads.example.com/releases/v${j}/bin/linux/amd64/tool-${j}\n      sha256: ${j.toString(16).padStart(8, '0').repeat(8)}\n`
    parts.push(s)
    size += s.length
    j++
  }
  return {text: parts.join(''), images: 2 * i, binaries: j}
}
