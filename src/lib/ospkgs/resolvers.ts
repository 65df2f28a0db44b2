/**
 * The resolver of each OS package type. A type is added here with one line;
 * everything else (fetching, the store, records, bundles, imports) is the
 * framework's (`pull.ts`, `plan.ts`).
 */
import type {AptOsPackageEntry, OsPackageType, RpmOsPackageEntry} from '../manifest/types.js'
import {resolveApt} from './apt/resolve-apt.js'
import type {OsResolver} from './plan.js'
import {resolveRpm} from './rpm/resolve-rpm.js'

export const resolvers: {apt: OsResolver<AptOsPackageEntry>; rpm: OsResolver<RpmOsPackageEntry>} = {
  apt: resolveApt,
  rpm: resolveRpm,
}

export function resolverOf(type: OsPackageType): OsResolver | undefined {
  return resolvers[type] as OsResolver | undefined
}
