/**
 * Test-only helpers (`@swarmpack/core/testing`): not part of the public API, used by the tests of
 * this package and of the packages above it to damage a block store the way a disk fault would.
 */
export { corruptRawBlock, rawBlocks, rawIndex, removeRawBlock, removeRawIndexEntry, writeRawBlock } from './store-db.js'
