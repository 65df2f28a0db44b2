import {afterAll} from 'vitest'

import {cleanupAfterFile} from './cleanup.js'

// A setup file of both projects: registered before the test file's own hooks,
// so it runs after them (after hooks run in reverse), once its servers are stopped.
afterAll(cleanupAfterFile)
