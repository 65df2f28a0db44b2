// postject ships no types; this is the one call scripts/build-bin.ts makes.
declare module 'postject' {
  export function inject(
    file: string,
    resourceName: string,
    resourceData: Buffer,
    options?: {sentinelFuse?: string; machoSegmentName?: string; overwrite?: boolean},
  ): Promise<void>
}
