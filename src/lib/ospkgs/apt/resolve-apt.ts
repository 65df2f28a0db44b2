import {FailureError} from '../../errors.js'
import type {AptOsPackageEntry} from '../../manifest/types.js'
import type {OsFetchContext, OsRepositoryPlan} from '../plan.js'

/** apt entries: signed Release, indexes by their sha256, the closure of Depends and Pre-Depends. */
export async function resolveApt(entries: AptOsPackageEntry[], _ctx: OsFetchContext): Promise<OsRepositoryPlan[]> {
  throw new FailureError(`${entries[0].field}: apt resolution is not implemented yet`)
}
