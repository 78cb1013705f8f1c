export { LOCKFILE_VERSION, LOCKFILE_NAME, serializeLock, parseLock, lockEntries, packageKey, splitKey, loadOrder } from './format.js'
export type { Lockfile, LockedPackage, LockEntry } from './format.js'
