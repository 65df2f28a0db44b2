/**
 * What airlock knows about running as the standalone executable. src/standalone.ts,
 * its entry point, sets it before any command runs; from a clone it stays unset.
 */
export interface StandaloneRuntime {
  /** The executable's own file. */
  executable: string
  /** A file embedded in the executable at build time (import.sh). */
  asset(name: string): Buffer
}

let runtime: StandaloneRuntime | undefined

export function setStandaloneRuntime(r: StandaloneRuntime): void {
  runtime = r
}

/** The standalone executable's runtime, or undefined when airlock runs from a clone or an npm install. */
export function standaloneRuntime(): StandaloneRuntime | undefined {
  return runtime
}
